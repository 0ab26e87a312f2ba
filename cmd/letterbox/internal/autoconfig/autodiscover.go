package autoconfig

import (
	"encoding/xml"
	"io"
	"net/http"
	"strings"
)

// Outlook's Autodiscover, the "POX" (plain old XML) kind: the client POSTs
// the address, the answer lists a Protocol element per endpoint. Outlook
// reads Encryption ("SSL" for implicit TLS, "TLS" for STARTTLS) before the
// older SSL on/off.

const (
	requestNS  = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
	responseNS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	outlookNS  = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)

type adRequest struct {
	XMLName xml.Name `xml:"Autodiscover"`
	Request struct {
		EMailAddress             string `xml:"EMailAddress"`
		AcceptableResponseSchema string `xml:"AcceptableResponseSchema"`
	} `xml:"Request"`
}

type adResponse struct {
	XMLName  xml.Name `xml:"Autodiscover"`
	NS       string   `xml:"xmlns,attr"`
	Response adInner  `xml:"Response"`
}

type adInner struct {
	NS      string     `xml:"xmlns,attr,omitempty"`
	User    *adUser    `xml:"User,omitempty"`
	Account *adAccount `xml:"Account,omitempty"`
	Error   *adError   `xml:"Error,omitempty"`
}

type adUser struct {
	EMailAddress string `xml:"AutoDiscoverSMTPAddress"`
}

type adAccount struct {
	AccountType string       `xml:"AccountType"`
	Action      string       `xml:"Action"`
	Protocols   []adProtocol `xml:"Protocol"`
}

type adProtocol struct {
	Type           string `xml:"Type"`
	Server         string `xml:"Server"`
	Port           int    `xml:"Port"`
	LoginName      string `xml:"LoginName"`
	DomainRequired string `xml:"DomainRequired"`
	SPA            string `xml:"SPA"`
	SSL            string `xml:"SSL"`
	Encryption     string `xml:"Encryption"`
	AuthRequired   string `xml:"AuthRequired"`
}

type adError struct {
	ErrorCode int    `xml:"ErrorCode"`
	Message   string `xml:"Message"`
}

func (h *handler) autodiscover(w http.ResponseWriter, r *http.Request) {
	var req adRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil {
		err = xml.Unmarshal(body, &req)
	}
	var a address
	if err == nil {
		a, err = parseAddress(req.Request.EMailAddress)
	}
	if err != nil {
		// Autodiscover's own error form, code 600: invalid request.
		w.WriteHeader(http.StatusBadRequest)
		writeXML(w, "application/xml", adResponse{NS: responseNS, Response: adInner{
			Error: &adError{ErrorCode: 600, Message: "Invalid Request"}}})
		return
	}
	if s := req.Request.AcceptableResponseSchema; s != "" && !strings.EqualFold(s, outlookNS) {
		// Only the Outlook schema is offered (mobile sync would want
		// ActiveSync, which Letterbox does not speak).
		w.WriteHeader(http.StatusBadRequest)
		writeXML(w, "application/xml", adResponse{NS: responseNS, Response: adInner{
			Error: &adError{ErrorCode: 600, Message: "Unsupported response schema"}}})
		return
	}
	acct := &adAccount{AccountType: "email", Action: "settings"}
	add := func(typ string, eps []Endpoint) {
		for _, e := range eps {
			p := adProtocol{Type: typ, Server: h.host(e), Port: e.Port, LoginName: h.login(a),
				DomainRequired: "off", SPA: "off", SSL: "on", Encryption: "SSL", AuthRequired: "on"}
			if e.Security == STARTTLS {
				p.Encryption = "TLS"
			}
			acct.Protocols = append(acct.Protocols, p)
		}
	}
	add("IMAP", h.s.IMAP)
	add("POP3", h.s.POP3)
	add("SMTP", []Endpoint{h.s.SMTP})
	writeXML(w, "application/xml", adResponse{NS: responseNS, Response: adInner{
		NS: outlookNS, User: &adUser{EMailAddress: a.full}, Account: acct}})
}
