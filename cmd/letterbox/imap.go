package main

import "github.com/letterbox-mail/letterbox/imap"

// newIMAP builds the IMAP server from the [imap] and [auth] sections.
func newIMAP(d deps) (protoServer, error) {
	c := d.cfg
	return &imap.Server{
		Store:                 d.store,
		Auth:                  d.auth,
		TLSConfig:             d.tls,
		AllowInsecureAuth:     c.Auth.AllowInsecure,
		AllowInsecureLoopback: c.Auth.AllowInsecureLoopback,
		AppendLimit:           c.IMAP.AppendLimit,
		MaxConnections:        c.IMAP.MaxConnections,
		MaxConnectionsPerIP:   c.IMAP.MaxConnectionsPerIP,
		MaxConnectionsPerUser: c.IMAP.MaxConnectionsPerUser,
		IdleTimeout:           c.IMAP.IdleTimeout,
		IdleKeepalive:         c.IMAP.IdleKeepalive,
		CommandLineTimeout:    c.IMAP.CommandTimeout,
		MaxLineLength:         c.IMAP.MaxLineLength,
		QuotaStorage:          c.IMAP.QuotaStorage,
		QuotaMessages:         c.IMAP.QuotaMessages,
		Logger:                d.log.With("proto", "imap"),
		Observer:              d.ops.observer("imap"),
	}, nil
}
