// Package testhooks lets package kstreamstest reach what package kstreams
// keeps unexported, without an import cycle: kstreams sets the hooks at
// init.
package testhooks

// CrashApp stops a *kstreams.App as a crash would (see kstreamstest.Crash).
var CrashApp func(app any)
