package autoconfig

import (
	"encoding/xml"
	"net/http"
)

// Thunderbird's autoconfig format ("clientConfig" version 1.1), as
// documented in Mozilla's wiki (Thunderbird:Autoconfiguration:
// ConfigFileFormat). Thunderbird needs a <domain>, an incoming and an
// outgoing server; it takes the first of each that it can use.

type clientConfig struct {
	XMLName  xml.Name      `xml:"clientConfig"`
	Version  string        `xml:"version,attr"`
	Provider emailProvider `xml:"emailProvider"`
}

type emailProvider struct {
	ID        string        `xml:"id,attr"`
	Domain    string        `xml:"domain"`
	Name      string        `xml:"displayName"`
	ShortName string        `xml:"displayShortName"`
	Incoming  []tbirdServer `xml:"incomingServer"`
	Outgoing  []tbirdServer `xml:"outgoingServer"`
}

type tbirdServer struct {
	Type       string `xml:"type,attr"`
	Hostname   string `xml:"hostname"`
	Port       int    `xml:"port"`
	SocketType string `xml:"socketType"`
	Username   string `xml:"username"`
	// Letterbox takes passwords as they are (LOGIN, USER/PASS, AUTH
	// PLAIN), always under TLS: "password-cleartext". The "encrypted"
	// kind means CRAM-MD5 and the like, which need the password stored
	// in clear on the server.
	Authentication string `xml:"authentication"`
}

func (h *handler) thunderbird(w http.ResponseWriter, r *http.Request) {
	domain := h.requestDomain(r)
	if e := r.URL.Query().Get("emailaddress"); e != "" {
		a, err := parseAddress(e)
		if err != nil {
			http.Error(w, "emailaddress: "+err.Error(), http.StatusBadRequest)
			return
		}
		domain = a.domain
	}
	// Thunderbird fills in the placeholders from what the user typed.
	user := "%EMAILADDRESS%"
	if h.s.LocalPartLogin {
		user = "%EMAILLOCALPART%"
	}
	p := emailProvider{ID: domain, Domain: domain, Name: domain, ShortName: domain}
	add := func(list *[]tbirdServer, typ string, eps []Endpoint) {
		for _, e := range eps {
			*list = append(*list, tbirdServer{Type: typ, Hostname: h.host(e), Port: e.Port,
				SocketType: socketType(e.Security), Username: user, Authentication: "password-cleartext"})
		}
	}
	add(&p.Incoming, "imap", h.s.IMAP)
	add(&p.Incoming, "pop3", h.s.POP3)
	add(&p.Outgoing, "smtp", []Endpoint{h.s.SMTP})
	writeXML(w, "application/xml", clientConfig{Version: "1.1", Provider: p})
}

func socketType(s Security) string {
	if s == STARTTLS {
		return "STARTTLS"
	}
	return "SSL"
}

// writeXML sends v as an XML document.
func writeXML(w http.ResponseWriter, contentType string, v any) {
	out, err := xml.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType+"; charset=utf-8")
	w.Write([]byte(xml.Header))
	w.Write(out)
	w.Write([]byte("\n"))
}
