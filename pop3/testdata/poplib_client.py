"""Drives Letterbox's POP3 server with Python's poplib, for clients_test.go.

Usage: poplib_client.py HOST PORT TLS_PORT USER PASSWORD CAFILE
Prints one JSON object with what each step got; the Go test checks it.
"""
import json
import poplib
import ssl
import sys

host, port, tls_port, user, password, cafile = sys.argv[1:]
ctx = ssl.create_default_context(cafile=cafile)
out = {}


def text(lines):
    return [l.decode("utf-8", "replace") for l in lines]


def stls_session():
    p = poplib.POP3(host, int(port), timeout=10)
    caps = p.capa()
    out.setdefault("capa_plain", sorted(caps))
    p.stls(ctx)  # raises unless STLS is in CAPA
    return p


# 1. STLS, CAPA after it, USER/PASS, STAT, LIST, UIDL, TOP, RETR.
p = stls_session()
out["capa_tls"] = sorted(p.capa())
p.user(user)
out["pass"] = p.pass_(password).decode()
out["stat"] = list(p.stat())
out["list"] = text(p.list()[1])
out["uidl1"] = text(p.uidl()[1])
out["uidl_one"] = p.uidl(2).decode()
out["top"] = text(p.top(3, 2)[1])
resp, lines, octets = p.retr(1)
out["retr_resp"] = resp.decode()
out["retr1"] = text(lines)
out["quit1"] = p.quit().decode()

# 2. UIDL again in a new session; DELE then RSET keeps the message.
p = stls_session()
p.user(user)
p.pass_(password)
out["uidl2"] = text(p.uidl()[1])
out["dele1"] = p.dele(1).decode()
out["rset"] = p.rset().decode()
out["quit2"] = p.quit().decode()

# 3. DELE then QUIT removes it.
p = stls_session()
p.user(user)
p.pass_(password)
out["dele2"] = p.dele(2).decode()
out["quit3"] = p.quit().decode()

# 4. Implicit TLS (port 995 style): what is left.
p = poplib.POP3_SSL(host, int(tls_port), context=ctx, timeout=10)
p.user(user)
p.pass_(password)
out["stat4"] = list(p.stat())
out["uidl4"] = text(p.uidl()[1])
p.quit()

# 5. A wrong password.
p = stls_session()
p.user(user)
try:
    p.pass_(password + "x")
    out["wrong"] = "accepted"
except poplib.error_proto as e:
    out["wrong"] = e.args[0].decode()
p.quit()

print(json.dumps(out))
