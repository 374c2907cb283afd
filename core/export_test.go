package kstreams

// Kill stops the app as a crash would (no flush, no commit); for tests.
func (a *App) Kill() { a.rt.Kill() }
