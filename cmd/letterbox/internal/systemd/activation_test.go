package systemd

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// placeFDs duplicates the descriptors of files to start, start+1, ..., as
// systemd arranges them from 3 on.
func placeFDs(t *testing.T, start int, files ...*os.File) {
	t.Helper()
	for i, f := range files {
		if err := unix.Dup2(int(f.Fd()), start+i); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for i := range files {
			unix.Close(start + i) // already closed when listenFDs took it
		}
	})
}

func listenerFile(t *testing.T) (net.Listener, *os.File) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return l, f
}

func TestListenFDs(t *testing.T) {
	const start = 400 // far above what the test binary has open
	self := strconv.Itoa(os.Getpid())

	t.Run("names and addresses", func(t *testing.T) {
		l1, f1 := listenerFile(t)
		l2, f2 := listenerFile(t)
		placeFDs(t, start, f1, f2)
		got, err := listenFDs([]string{"LISTEN_PID=" + self, "LISTEN_FDS=2", "LISTEN_FDNAMES=imaps:pop3"}, os.Getpid(), start)
		if err != nil || len(got) != 2 {
			t.Fatalf("%v %v", got, err)
		}
		defer got[0].Listener.Close()
		defer got[1].Listener.Close()
		if got[0].Name != "imaps" || got[1].Name != "pop3" {
			t.Errorf("names %q %q", got[0].Name, got[1].Name)
		}
		if got[0].Listener.Addr().String() != l1.Addr().String() || got[1].Listener.Addr().String() != l2.Addr().String() {
			t.Errorf("addresses %v %v, want %v %v", got[0].Listener.Addr(), got[1].Listener.Addr(), l1.Addr(), l2.Addr())
		}
		// The descriptor systemd passed is closed; the listener works.
		if _, err := unix.FcntlInt(start, unix.F_GETFD, 0); err == nil {
			t.Error("descriptor 400 still open")
		}
		c, err := net.Dial("tcp", l1.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if a, err := got[0].Listener.Accept(); err != nil {
			t.Error(err)
		} else {
			a.Close()
		}
	})

	t.Run("not for this process", func(t *testing.T) {
		_, f1 := listenerFile(t)
		placeFDs(t, start, f1)
		for _, env := range [][]string{
			nil,
			{"LISTEN_PID=1", "LISTEN_FDS=1"},
			{"LISTEN_FDS=1"},
		} {
			if got, err := listenFDs(env, os.Getpid(), start); got != nil || err != nil {
				t.Errorf("%v: %v %v", env, got, err)
			}
		}
		if _, err := unix.FcntlInt(start, unix.F_GETFD, 0); err != nil {
			t.Error("a descriptor meant for another process was closed")
		}
	})

	t.Run("names missing", func(t *testing.T) {
		_, f1 := listenerFile(t)
		placeFDs(t, start, f1)
		got, err := listenFDs([]string{"LISTEN_PID=" + self, "LISTEN_FDS=1"}, os.Getpid(), start)
		if err != nil || len(got) != 1 || got[0].Name != "" {
			t.Fatalf("%v %v", got, err)
		}
		got[0].Listener.Close()
	})

	t.Run("bad", func(t *testing.T) {
		if _, err := listenFDs([]string{"LISTEN_PID=" + self, "LISTEN_FDS=many"}, os.Getpid(), start); err == nil {
			t.Error("LISTEN_FDS=many accepted")
		}
		// A datagram socket and a connected stream socket are no
		// listeners; the good one next to them is closed too.
		_, good := listenerFile(t)
		udp, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer udp.Close()
		uf, _ := udp.(*net.UDPConn).File()
		defer uf.Close()
		l, _ := listenerFile(t)
		conn, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		cf, _ := conn.(*net.TCPConn).File()
		defer cf.Close()
		placeFDs(t, start, good, uf, cf)
		got, err := listenFDs([]string{"LISTEN_PID=" + self, "LISTEN_FDS=3", "LISTEN_FDNAMES=imap:x:y"}, os.Getpid(), start)
		if err == nil || got != nil {
			t.Fatalf("got %v, %v", got, err)
		}
		for _, want := range []string{`descriptor 401 ("x")`, `descriptor 402 ("y")`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		}
	})
}

// Listeners takes the variables out of the process environment.
func TestListenersUnsetsEnv(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	for _, kv := range []string{"LISTEN_PID=" + self, "LISTEN_FDS=0", "LISTEN_FDNAMES="} {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	if ls, err := Listeners(os.Environ()); len(ls) != 0 || err != nil {
		t.Fatalf("%v %v", ls, err)
	}
	for _, name := range listenEnv {
		if v, ok := os.LookupEnv(name); ok {
			t.Errorf("%s=%q still set", name, v)
		}
	}
}
