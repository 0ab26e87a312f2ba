//go:build !linux

package main

// startedByGoRun cannot tell here.
func startedByGoRun() bool { return false }

// stopWithGoRun has no parent-death signal to ask for here.
func stopWithGoRun() {}
