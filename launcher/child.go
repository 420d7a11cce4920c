package launcher

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
)

// forwarded are the signals passed on to the child.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// runChild starts the child with the terminal handed over as is, forwards
// signals, waits, and returns the exit status a shell would show: the
// child's own, or 128+N when a signal N killed it.
func runChild(path string, argv, env []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	cmd := exec.Command(path, argv[1:]...)
	cmd.Args = argv
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.SysProcAttr = childAttr()

	// Listen before starting, so a signal that comes in between cannot
	// kill cloak and leave the child without its proxy.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)

	type result struct {
		code int
		err  error
	}
	started := make(chan error, 1)
	done := make(chan result, 1)
	go func() {
		// Pdeathsig is tied to the thread that started the child: keep
		// this goroutine on one thread until the child is gone.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		err := cmd.Wait()
		done <- result{code: exitCode(cmd.ProcessState, err)}
	}()
	if err := <-started; err != nil {
		if errors.Is(err, os.ErrPermission) {
			return 126, &ExitError{Code: 126, Err: fmt.Errorf("%s: permission denied", argv[0])}
		}
		return 127, &ExitError{Code: 127, Err: fmt.Errorf("%s: %w", argv[0], err)}
	}
	for {
		select {
		case s := <-sigs:
			if fromTerminal(s) {
				continue // the terminal sent it to the child too
			}
			_ = cmd.Process.Signal(s)
		case r := <-done:
			return r.code, r.err
		}
	}
}

func exitCode(ps *os.ProcessState, err error) int {
	if ps == nil {
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
