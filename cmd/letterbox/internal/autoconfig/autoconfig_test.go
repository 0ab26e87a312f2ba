package autoconfig

import (
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

var settings = Settings{
	Hostname: "mail.example.org",
	IMAP:     []Endpoint{{Port: 993}, {Port: 143, Security: STARTTLS}},
	POP3:     []Endpoint{{Port: 995}, {Port: 110, Security: STARTTLS}},
	SMTP:     Endpoint{Host: "smtp.example.org", Port: 587, Security: STARTTLS},
}

// do runs one request against a handler for s and returns the response.
func do(t *testing.T, s Settings, method, target, host, body string) (int, http.Header, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if host != "" {
		req.Host = host
	}
	rec := httptest.NewRecorder()
	Handler(s).ServeHTTP(rec, req)
	return rec.Code, rec.Header(), rec.Body.String()
}

// noPlaintext fails if a document offers a connection without TLS, in
// any of the three formats' words.
func noPlaintext(t *testing.T, doc string) {
	t.Helper()
	for _, bad := range []string{">plain<", "<SSL>off", "<Encryption>None", "<false/>"} {
		if strings.Contains(doc, bad) {
			t.Errorf("document offers plaintext (%s):\n%s", bad, doc)
		}
	}
}

func TestThunderbird(t *testing.T) {
	type server struct {
		Type       string `xml:"type,attr"`
		Hostname   string `xml:"hostname"`
		Port       int    `xml:"port"`
		SocketType string `xml:"socketType"`
		Username   string `xml:"username"`
		Auth       string `xml:"authentication"`
	}
	type doc struct {
		Version  string `xml:"version,attr"`
		Provider struct {
			ID       string   `xml:"id,attr"`
			Domain   []string `xml:"domain"`
			Incoming []server `xml:"incomingServer"`
			Outgoing []server `xml:"outgoingServer"`
		} `xml:"emailProvider"`
	}
	for _, path := range []string{"/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"} {
		code, hdr, body := do(t, settings, "GET", path+"?emailaddress=alice%40Example.ORG", "autoconfig.example.org", "")
		if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/xml") {
			t.Fatalf("%s: %d %v\n%s", path, code, hdr, body)
		}
		noPlaintext(t, body)
		var d doc
		if err := xml.Unmarshal([]byte(body), &d); err != nil {
			t.Fatalf("%s: %v\n%s", path, err, body)
		}
		if d.Version != "1.1" || d.Provider.ID != "example.org" || !reflect.DeepEqual(d.Provider.Domain, []string{"example.org"}) {
			t.Errorf("%s: provider %+v", path, d.Provider)
		}
		want := []server{
			{"imap", "mail.example.org", 993, "SSL", "%EMAILADDRESS%", "password-cleartext"},
			{"imap", "mail.example.org", 143, "STARTTLS", "%EMAILADDRESS%", "password-cleartext"},
			{"pop3", "mail.example.org", 995, "SSL", "%EMAILADDRESS%", "password-cleartext"},
			{"pop3", "mail.example.org", 110, "STARTTLS", "%EMAILADDRESS%", "password-cleartext"},
		}
		if !reflect.DeepEqual(d.Provider.Incoming, want) {
			t.Errorf("%s: incoming\n%+v\nwant\n%+v", path, d.Provider.Incoming, want)
		}
		if out := []server{{"smtp", "smtp.example.org", 587, "STARTTLS", "%EMAILADDRESS%", "password-cleartext"}}; !reflect.DeepEqual(d.Provider.Outgoing, out) {
			t.Errorf("%s: outgoing %+v", path, d.Provider.Outgoing)
		}
	}

	// Users named by local part; no address in the request: the domain
	// comes from the host asked.
	s := settings
	s.LocalPartLogin = true
	_, _, body := do(t, s, "GET", "/mail/config-v1.1.xml", "autoconfig.example.net:80", "")
	if !strings.Contains(body, "<domain>example.net</domain>") || !strings.Contains(body, "<username>%EMAILLOCALPART%</username>") || strings.Contains(body, "%EMAILADDRESS%") {
		t.Errorf("local-part logins, domain from Host:\n%s", body)
	}
	// An address that is not one is refused, not echoed.
	for _, bad := range []string{"alice", "<script>@example.org", "alice@exa mple.org", "a@b@", "@example.org"} {
		if code, _, body := do(t, settings, "GET", "/mail/config-v1.1.xml?emailaddress="+strings.ReplaceAll(bad, " ", "%20"), "", ""); code != 400 || strings.Contains(body, "<script>") {
			t.Errorf("%q: %d %q", bad, code, body)
		}
	}
}

func TestAutodiscover(t *testing.T) {
	const request = `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>bob@example.org</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>`
	type protocol struct {
		Type, Server                                                  string
		Port                                                          int
		LoginName, DomainRequired, SPA, SSL, Encryption, AuthRequired string
	}
	type doc struct {
		XMLName  xml.Name
		Response struct {
			XMLName xml.Name
			User    struct {
				Address string `xml:"AutoDiscoverSMTPAddress"`
			}
			Account struct {
				AccountType, Action string
				Protocol            []protocol
			}
		}
	}
	s := settings
	s.LocalPartLogin = true
	// Outlook asks with a capital A.
	for _, path := range []string{"/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"} {
		code, _, body := do(t, s, "POST", path, "autodiscover.example.org", request)
		if code != 200 {
			t.Fatalf("%s: %d\n%s", path, code, body)
		}
		noPlaintext(t, body)
		var d doc
		if err := xml.Unmarshal([]byte(body), &d); err != nil {
			t.Fatal(err)
		}
		if d.XMLName.Space != responseNS || d.Response.XMLName.Space != outlookNS || d.Response.User.Address != "bob@example.org" ||
			d.Response.Account.AccountType != "email" || d.Response.Account.Action != "settings" {
			t.Errorf("%s: %+v", path, d)
		}
		want := []protocol{
			{"IMAP", "mail.example.org", 993, "bob", "off", "off", "on", "SSL", "on"},
			{"IMAP", "mail.example.org", 143, "bob", "off", "off", "on", "TLS", "on"},
			{"POP3", "mail.example.org", 995, "bob", "off", "off", "on", "SSL", "on"},
			{"POP3", "mail.example.org", 110, "bob", "off", "off", "on", "TLS", "on"},
			{"SMTP", "smtp.example.org", 587, "bob", "off", "off", "on", "TLS", "on"},
		}
		if !reflect.DeepEqual(d.Response.Account.Protocol, want) {
			t.Errorf("%s: protocols\n%+v\nwant\n%+v", path, d.Response.Account.Protocol, want)
		}
	}

	for name, body := range map[string]string{
		"not XML":     "hello",
		"no address":  `<Autodiscover><Request></Request></Autodiscover>`,
		"bad address": `<Autodiscover><Request><EMailAddress>bob</EMailAddress></Request></Autodiscover>`,
		"ActiveSync":  `<Autodiscover><Request><EMailAddress>bob@example.org</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006</AcceptableResponseSchema></Request></Autodiscover>`,
		"huge":        "<Autodiscover>" + strings.Repeat("x", 100<<10),
	} {
		code, _, out := do(t, settings, "POST", "/autodiscover/autodiscover.xml", "", body)
		if code != 400 || !strings.Contains(out, "<ErrorCode>600</ErrorCode>") {
			t.Errorf("%s: %d\n%s", name, code, out)
		}
	}
	if code, _, _ := do(t, settings, "GET", "/autodiscover/autodiscover.xml", "", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", code)
	}
}

// plistDict reads the keys and values of a dict element, nested dicts and
// arrays skipped.
func plistDict(t *testing.T, d *xml.Decoder) map[string]string {
	t.Helper()
	out := make(map[string]string)
	var key string
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			switch el.Name.Local {
			case "key":
				var k string
				d.DecodeElement(&k, &el)
				key = k
			case "string", "integer":
				var v string
				d.DecodeElement(&v, &el)
				out[key] = v
			case "true", "false":
				d.Skip()
				out[key] = el.Name.Local
			case "array", "dict":
				d.Skip()
				out[key] = el.Name.Local
			}
		case xml.EndElement:
			if el.Name.Local == "dict" {
				return out
			}
		}
	}
}

func TestMobileconfig(t *testing.T) {
	code, hdr, body := do(t, settings, "GET", "/mail/profile.mobileconfig?emailaddress=carol%40example.org", "", "")
	if code != 200 || hdr.Get("Content-Type") != "application/x-apple-aspen-config" || !strings.Contains(hdr.Get("Content-Disposition"), "example.org.mobileconfig") {
		t.Fatalf("%d %v\n%s", code, hdr, body)
	}
	noPlaintext(t, body)
	d := xml.NewDecoder(strings.NewReader(body))
	var outer, inner map[string]string
	for tok, err := d.Token(); err == nil; tok, err = d.Token() {
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == "dict" {
			if outer == nil {
				// The outer dict starts with PayloadContent: read the
				// account's dict inside its array first.
				outer = map[string]string{}
				for tok, err := d.Token(); err == nil; tok, err = d.Token() {
					if el, ok := tok.(xml.StartElement); ok && el.Name.Local == "dict" {
						inner = plistDict(t, d)
						break
					}
				}
				for k, v := range plistDict(t, d) {
					outer[k] = v
				}
				break
			}
		}
	}
	for k, v := range map[string]string{
		"EmailAccountType": "EmailTypeIMAP", "EmailAddress": "carol@example.org",
		"IncomingMailServerHostName": "mail.example.org", "IncomingMailServerPortNumber": "993",
		"IncomingMailServerUseSSL": "true", "IncomingMailServerUsername": "carol@example.org",
		"IncomingMailServerAuthentication": "EmailAuthPassword",
		"OutgoingMailServerHostName":       "smtp.example.org", "OutgoingMailServerPortNumber": "587",
		"OutgoingMailServerUseSSL": "true", "OutgoingPasswordSameAsIncomingPassword": "true",
		"PayloadType": "com.apple.mail.managed", "PayloadVersion": "1",
	} {
		if inner[k] != v {
			t.Errorf("account %s = %q, want %q", k, inner[k], v)
		}
	}
	if outer["PayloadType"] != "Configuration" || outer["PayloadUUID"] == "" || outer["PayloadUUID"] == inner["PayloadUUID"] ||
		!strings.HasPrefix(outer["PayloadIdentifier"], "org.example.mail.letterbox.") {
		t.Errorf("profile %v", outer)
	}
	if _, ok := inner["IncomingPassword"]; ok {
		t.Error("the profile carries a password")
	}
	// The same address gets the same profile (installing it again
	// replaces it); another gets another.
	if _, _, again := do(t, settings, "GET", "/mail/profile.mobileconfig?emailaddress=carol%40example.org", "", ""); again != body {
		t.Error("profile not stable")
	}
	if _, _, other := do(t, settings, "GET", "/mail/profile.mobileconfig?emailaddress=dave%40example.org", "", ""); strings.Contains(other, inner["PayloadUUID"]) {
		t.Error("two addresses share a payload UUID")
	}

	// POP3 only: a POP account; STARTTLS only: still TLS.
	s := Settings{Hostname: "mail.example.org", POP3: []Endpoint{{Port: 110, Security: STARTTLS}}, SMTP: Endpoint{Port: 465}}
	_, _, body = do(t, s, "GET", "/mail/profile.mobileconfig?emailaddress=carol%40example.org", "", "")
	noPlaintext(t, body)
	if !strings.Contains(body, "<string>EmailTypePOP</string>") || !strings.Contains(body, "<integer>110</integer>") || !strings.Contains(body, "<key>OutgoingMailServerHostName</key><string>mail.example.org</string>") {
		t.Errorf("POP3 profile:\n%s", body)
	}
	if code, _, _ := do(t, settings, "GET", "/mail/profile.mobileconfig", "", ""); code != 400 {
		t.Errorf("no address: %d", code)
	}

	// An independent reader: Python's plistlib, where installed.
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	cmd := exec.Command(py, "-c", `import plistlib,sys; p=plistlib.loads(sys.stdin.buffer.read()); a=p["PayloadContent"][0]; print(a["IncomingMailServerPortNumber"], a["IncomingMailServerUseSSL"], p["PayloadType"])`)
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "110 True Configuration" {
		t.Errorf("plistlib: %v %s", err, out)
	}
}

func TestNotFound(t *testing.T) {
	for _, path := range []string{"/", "/mail/", "/autodiscover/autodiscover.json"} {
		if code, _, _ := do(t, settings, "GET", path, "", ""); code != 404 {
			t.Errorf("%s: %d", path, code)
		}
	}
}
