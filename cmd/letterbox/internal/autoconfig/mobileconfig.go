package autoconfig

import (
	"crypto/sha256"
	"encoding/xml"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// An Apple configuration profile (.mobileconfig) with one mail account
// payload (com.apple.mail.managed). It is not signed, so devices call it
// "unverified"; installing it still needs the user's consent, and the
// password is asked for on the device, never put in the profile.

// plist is a property list being written.
type plist struct{ b strings.Builder }

func (p *plist) raw(s string) { p.b.WriteString(s) }

func (p *plist) str(key, value string) {
	p.raw("<key>")
	xml.EscapeText(&p.b, []byte(key))
	p.raw("</key><string>")
	xml.EscapeText(&p.b, []byte(value))
	p.raw("</string>\n")
}

func (p *plist) int(key string, v int) {
	p.raw(fmt.Sprintf("<key>%s</key><integer>%d</integer>\n", key, v))
}

// yes writes a true value; the profile needs no false ones.
func (p *plist) yes(key string) { p.raw("<key>" + key + "</key><true/>\n") }

// uuid derives a stable UUID from parts, so that installing the profile
// for the same address again replaces the old one instead of adding a
// second account.
func uuid(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	sum[6] = sum[6]&0x0f | 0x80 // version 8: custom (RFC 9562)
	sum[8] = sum[8]&0x3f | 0x80 // variant 10
	return fmt.Sprintf("%X-%X-%X-%X-%X", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
}

// reverseDNS turns a host name into a payload identifier prefix:
// mail.example.org → org.example.mail.
func reverseDNS(host string) string {
	parts := strings.Split(strings.ToLower(host), ".")
	slices.Reverse(parts)
	return strings.Join(parts, ".")
}

func (h *handler) mobileconfig(w http.ResponseWriter, r *http.Request) {
	a, err := parseAddress(r.URL.Query().Get("emailaddress"))
	if err != nil {
		http.Error(w, "emailaddress: "+err.Error(), http.StatusBadRequest)
		return
	}
	// One incoming server only: IMAP if offered, implicit TLS first.
	typ, eps := "EmailTypeIMAP", h.s.IMAP
	if len(eps) == 0 {
		typ, eps = "EmailTypePOP", h.s.POP3
	}
	if len(eps) == 0 {
		http.Error(w, "no IMAP or POP3 server to configure", http.StatusNotFound)
		return
	}
	in, out := eps[0], h.s.SMTP
	id := reverseDNS(h.s.Hostname) + ".letterbox"

	var p plist
	p.raw(xml.Header)
	p.raw(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	p.raw("<plist version=\"1.0\">\n<dict>\n<key>PayloadContent</key>\n<array>\n<dict>\n")
	p.str("EmailAccountType", typ)
	p.str("EmailAccountDescription", a.full)
	p.str("EmailAddress", a.full)
	// Devices with UseSSL on a STARTTLS port upgrade with STARTTLS, and
	// refuse to log in without TLS either way.
	p.str("IncomingMailServerAuthentication", "EmailAuthPassword")
	p.str("IncomingMailServerHostName", h.host(in))
	p.int("IncomingMailServerPortNumber", in.Port)
	p.yes("IncomingMailServerUseSSL")
	p.str("IncomingMailServerUsername", h.login(a))
	p.str("OutgoingMailServerAuthentication", "EmailAuthPassword")
	p.str("OutgoingMailServerHostName", h.host(out))
	p.int("OutgoingMailServerPortNumber", out.Port)
	p.yes("OutgoingMailServerUseSSL")
	p.str("OutgoingMailServerUsername", h.login(a))
	p.yes("OutgoingPasswordSameAsIncomingPassword")
	p.str("PayloadDescription", "Mail account "+a.full)
	p.str("PayloadDisplayName", a.full)
	p.str("PayloadIdentifier", id+".account."+uuid(h.s.Hostname, a.full, "account"))
	p.str("PayloadType", "com.apple.mail.managed")
	p.str("PayloadUUID", uuid(h.s.Hostname, a.full, "account"))
	p.int("PayloadVersion", 1)
	p.raw("</dict>\n</array>\n")
	p.str("PayloadDescription", "Sets up the mail account "+a.full+" on "+h.s.Hostname)
	p.str("PayloadDisplayName", "Mail: "+a.full)
	p.str("PayloadIdentifier", id+".profile."+uuid(h.s.Hostname, a.full, "profile"))
	p.str("PayloadType", "Configuration")
	p.str("PayloadUUID", uuid(h.s.Hostname, a.full, "profile"))
	p.int("PayloadVersion", 1)
	p.raw("</dict>\n</plist>\n")

	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", `attachment; filename="`+strings.ReplaceAll(a.domain, `"`, "")+`.mobileconfig"`)
	w.Write([]byte(p.b.String()))
}
