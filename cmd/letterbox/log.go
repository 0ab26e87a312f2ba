package main

import (
	"io"
	"log/slog"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
)

// newLiveLogger returns the process logger the config asks for, writing to
// w. Its level is the returned LevelVar, which slog's handlers consult on
// every record, so a reload can change it.
func newLiveLogger(cfg config.Log, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	level.Set(cfg.Level)
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), level
	}
	return slog.New(slog.NewTextHandler(w, opts)), level
}
