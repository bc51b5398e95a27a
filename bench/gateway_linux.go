package bench

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel send SIGTERM to the gateway if tollbench
// dies without stopping it (killed, crashed), so no benchmark gateway is
// left holding ports and CPU.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
