package main

import (
	"io"
	"log/slog"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
)

// newLogger returns the process logger the config asks for, writing to w.
func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
