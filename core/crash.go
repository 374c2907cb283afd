package kstreams

import "github.com/kstreams-go/kstreams/core/internal/testhooks"

func init() {
	testhooks.CrashApp = func(app any) { app.(*App).rt.Kill() }
}
