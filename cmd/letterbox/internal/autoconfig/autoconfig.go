// Package autoconfig tells mail clients where the servers are, so that a
// user types an e-mail address and a password and nothing else. It
// answers the three ways clients ask:
//
//   - Thunderbird (and Evolution, KMail, K-9): GET
//     /mail/config-v1.1.xml?emailaddress=ADDR on autoconfig.DOMAIN, and
//     /.well-known/autoconfig/mail/config-v1.1.xml on DOMAIN;
//   - Outlook: POST /autodiscover/autodiscover.xml (Autodiscover "POX",
//     the request names the address) on autodiscover.DOMAIN;
//   - Apple Mail, iOS and macOS: GET /mail/profile.mobileconfig?emailaddress=ADDR,
//     a configuration profile the user opens and installs.
//
// Every document is made from Settings: the server's host name, its IMAP
// and POP3 ports and how each does TLS, the SMTP submission server, and
// whether users log in with their whole address or its local part. An
// endpoint is implicit TLS or STARTTLS, never plaintext: there is no way
// to advertise a port where a password would cross the network in clear.
package autoconfig

import (
	"errors"
	"net"
	"net/http"
	"strings"
)

// Security is how a client gets TLS on an endpoint.
type Security int

const (
	// ImplicitTLS: TLS from the first byte (RFC 8314), ports 993, 995, 465.
	ImplicitTLS Security = iota
	// STARTTLS: the client must upgrade before logging in (RFC 2595,
	// RFC 3207), ports 143, 110, 587.
	STARTTLS
)

// Endpoint is one port a client may use.
type Endpoint struct {
	// Host is the server's name; "" means Settings.Hostname.
	Host     string
	Port     int
	Security Security
}

// Settings describe the service.
type Settings struct {
	// Hostname is the name clients connect to; the certificate must
	// name it. Required.
	Hostname string
	// IMAP and POP3 list the endpoints, preferred first; either may be
	// empty. Clients take IMAP over POP3.
	IMAP, POP3 []Endpoint
	// SMTP is the submission server. Required: clients need one to send
	// mail, which Letterbox does not do.
	SMTP Endpoint
	// LocalPartLogin: users log in with the part of their address before
	// "@" ("alice"), not the whole address ("alice@example.org").
	LocalPartLogin bool
}

// maxBody bounds an Autodiscover request; real ones are a few hundred
// bytes.
const maxBody = 16 << 10

// Handler answers the three kinds of request; anything else is 404.
func Handler(s Settings) http.Handler {
	h := &handler{s: s}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /mail/config-v1.1.xml", h.thunderbird)
	mux.HandleFunc("GET /.well-known/autoconfig/mail/config-v1.1.xml", h.thunderbird)
	mux.HandleFunc("POST /autodiscover/autodiscover.xml", h.autodiscover)
	mux.HandleFunc("GET /mail/profile.mobileconfig", h.mobileconfig)
	// Outlook capitalizes the path, and HTTP paths are case-sensitive.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.URL.Path, "/autodiscover/autodiscover.xml") {
			r.URL.Path = "/autodiscover/autodiscover.xml"
		}
		w.Header().Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

type handler struct{ s Settings }

// address is an e-mail address from a request, split.
type address struct {
	full, local, domain string
}

var errBadAddress = errors.New("not an e-mail address")

// parseAddress accepts what a user types in a client's setup dialog:
// local@domain, with a host name for domain. Anything odd is refused, not
// echoed into a document.
func parseAddress(s string) (address, error) {
	s = strings.TrimSpace(s)
	i := strings.LastIndexByte(s, '@')
	if i <= 0 || i == len(s)-1 || len(s) > 254 {
		return address{}, errBadAddress
	}
	local, domain := s[:i], strings.ToLower(s[i+1:])
	if strings.ContainsFunc(local, func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune(`"()<>[]\,;:@`, r) }) {
		return address{}, errBadAddress
	}
	if !isHostname(domain) {
		return address{}, errBadAddress
	}
	return address{full: local + "@" + domain, local: local, domain: domain}, nil
}

func isHostname(h string) bool {
	if h == "" || len(h) > 253 || strings.HasPrefix(h, ".") || strings.HasSuffix(h, ".") || strings.Contains(h, "..") {
		return false
	}
	return !strings.ContainsFunc(h, func(r rune) bool {
		return !(r == '.' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	})
}

// requestDomain is the mail domain a request is about when it names no
// address: the host it was sent to, without "autoconfig." or
// "autodiscover.", else the server's own name.
func (h *handler) requestDomain(r *http.Request) string {
	host := r.Host
	if hp, _, err := net.SplitHostPort(host); err == nil {
		host = hp
	}
	host = strings.ToLower(host)
	for _, p := range []string{"autoconfig.", "autodiscover."} {
		host = strings.TrimPrefix(host, p)
	}
	if isHostname(host) && net.ParseIP(host) == nil {
		return host
	}
	return strings.ToLower(h.s.Hostname)
}

// login is what the user logs in with, for an address.
func (h *handler) login(a address) string {
	if h.s.LocalPartLogin {
		return a.local
	}
	return a.full
}

func (h *handler) host(e Endpoint) string {
	if e.Host != "" {
		return e.Host
	}
	return h.s.Hostname
}
