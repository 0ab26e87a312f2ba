package main

import "github.com/letterbox-mail/letterbox/pop3"

// newPOP3 builds the POP3 server from the [pop3] and [auth] sections.
func newPOP3(d deps) (protoServer, error) {
	c := d.cfg
	return &pop3.Server{
		Auth:                  d.auth,
		Store:                 d.store,
		TLSConfig:             d.tls,
		AllowInsecureAuth:     c.Auth.AllowInsecure,
		AllowInsecureLoopback: c.Auth.AllowInsecureLoopback,
		MaxLineLength:         c.POP3.MaxLineLength,
		MaxBadCommands:        c.POP3.MaxBadCommands,
		IdleTimeout:           c.POP3.IdleTimeout,
		CommandTimeout:        c.POP3.CommandTimeout,
		MaxConnections:        c.POP3.MaxConnections,
		MaxConnectionsPerIP:   c.POP3.MaxConnectionsPerIP,
		Logger:                d.log.With("proto", "pop3"),
		Observer:              d.ops.observer("pop3"),
	}, nil
}
