package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// runFlood opens many connections to one listener and holds them, as a
// careless or hostile client would, to see what the server keeps: how many
// it holds open after the hold time, how many it refused or cut. With
// -drip, each connection sends one byte (never a line end) every interval,
// the slow-loris pattern that a per-read timeout never ends. Nothing is
// asserted; the server's side (open descriptors, RSS) is read from /proc
// by whoever runs this.
func runFlood(args []string) error {
	fs := flag.NewFlagSet("flood", flag.ExitOnError)
	addr := fs.String("addr", "", "TCP host:port to flood")
	unixPath := fs.String("unix", "", "unix socket path to flood (instead of -addr)")
	conns := fs.Int("conns", 1000, "connections to open")
	sources := fs.Int("sources", 1, "spread connections over this many loopback source addresses (127.0.0.1, .2, ...)")
	hold := fs.Duration("hold", 10*time.Second, "how long to hold the connections")
	drip := fs.Duration("drip", 0, "send one byte per connection this often (0: stay silent)")
	fs.Parse(args)
	if (*addr == "") == (*unixPath == "") {
		return errors.New("need one of -addr and -unix")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	var dialed, failed, cut atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	sem := make(chan struct{}, 64) // dials in flight
	start := time.Now()
	for i := range *conns {
		sem <- struct{}{}
		c, err := floodDial(*addr, *unixPath, i%max(*sources, 1))
		<-sem
		if err != nil {
			failed.Add(1)
			continue
		}
		dialed.Add(1)
		wg.Go(func() {
			defer c.Close()
			gone := make(chan struct{})
			go func() {
				io.Copy(io.Discard, c) // greeting, refusal, farewell
				close(gone)
			}()
			var tick <-chan time.Time
			if *drip > 0 {
				t := time.NewTicker(*drip)
				defer t.Stop()
				tick = t.C
			}
			for {
				select {
				case <-gone:
					cut.Add(1)
					return
				case <-stop:
					return
				case <-tick:
					c.Write([]byte("x"))
				}
			}
		})
	}
	fmt.Printf("flood %s%s: %d dialed, %d failed to dial in %v; holding %v\n",
		*addr, *unixPath, dialed.Load(), failed.Load(), time.Since(start).Round(time.Millisecond), *hold)
	select {
	case <-time.After(*hold):
	case <-ctx.Done():
	}
	fmt.Printf("after %v: %d still open, %d closed by the server\n",
		time.Since(start).Round(time.Millisecond), dialed.Load()-cut.Load(), cut.Load())
	close(stop)
	wg.Wait()
	return nil
}

func floodDial(addr, unixPath string, source int) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if unixPath != "" {
		return d.Dial("unix", unixPath)
	}
	if source > 0 {
		ip := netip.AddrFrom4([4]byte{127, 0, byte(source / 250), byte(1 + source%250)})
		d.LocalAddr = &net.TCPAddr{IP: ip.AsSlice()}
	}
	return d.Dial("tcp", addr)
}
