package main

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var autoconfigAddrRE = regexp.MustCompile(`msg="autoconfig (\(https\) )?listening" addr=(\S+)`)

// TestServeAutoconfig: with autoconfig on, a mail client asking over
// HTTP or HTTPS learns the ports the servers really listen on, TLS ones
// first, and never a plaintext one.
func TestServeAutoconfig(t *testing.T) {
	e := newTestEnv(t)
	sr := e.startServe(nil, append(loopbackFlags, "--autoconfig.listen=127.0.0.1:0", "--autoconfig.listen_tls=127.0.0.1:0",
		"--autoconfig.hostname=localhost", "--autoconfig.smtp=smtp.example.org:587")...)
	var plain, secure string
	for _, m := range autoconfigAddrRE.FindAllStringSubmatch(sr.stderr.String(), -1) {
		if m[1] == "" {
			plain = m[2]
		} else {
			secure = m[2]
		}
	}
	if plain == "" || secure == "" {
		t.Fatalf("autoconfig listeners not logged:\n%s", sr.stderr.String())
	}
	ls := sr.listeners()
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(url string) string {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", url, resp.StatusCode, b)
		}
		return string(b)
	}
	doc := get("http://" + plain + "/mail/config-v1.1.xml?emailaddress=demo@example.org")
	order := []string{
		`<incomingServer type="imap">` + "\n      <hostname>localhost</hostname>\n      <port>" + port(ls["imap/implicit"]) + "</port>\n      <socketType>SSL</socketType>",
		"<port>" + port(ls["imap/starttls"]) + "</port>\n      <socketType>STARTTLS</socketType>",
		"<port>" + port(ls["pop3/implicit"]) + "</port>\n      <socketType>SSL</socketType>",
		"<port>" + port(ls["pop3/starttls"]) + "</port>\n      <socketType>STARTTLS</socketType>",
		"<hostname>smtp.example.org</hostname>\n      <port>587</port>\n      <socketType>STARTTLS</socketType>",
	}
	at := 0
	for _, want := range order {
		i := strings.Index(doc[at:], want)
		if i < 0 {
			t.Fatalf("document lacks, or has out of order, %q:\n%s", want, doc)
		}
		at += i
	}
	if strings.Contains(doc, ">plain<") {
		t.Errorf("plaintext offered:\n%s", doc)
	}
	if p := get("https://" + secure + "/mail/profile.mobileconfig?emailaddress=demo@example.org"); !strings.Contains(p, "<integer>"+port(ls["imap/implicit"])+"</integer>") {
		t.Errorf("profile over HTTPS:\n%s", p)
	}
}
