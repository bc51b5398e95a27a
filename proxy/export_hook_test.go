package proxy

// Test-only access to the panic hook (panic.go) for the external tests in
// package proxy_test.

// The stages of a call where a test can inject a panic.
const (
	StageAdmit   = int(stageAdmit)
	StageForward = int(stageForward)
	StageStream  = int(stageStream)
	StageSettle  = int(stageSettle)
	StageRead    = int(stageRead)
)

// SetPanicHook makes every call report each stage it reaches to f (nil
// removes the hook). It must be called while no gateway is serving: the hook
// is read without synchronisation.
func SetPanicHook(f func(stage int)) {
	if f == nil {
		panicHook = nil
		return
	}
	panicHook = func(s callStage) { f(int(s)) }
}
