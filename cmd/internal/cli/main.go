// Package cli is the scaffolding the commands share: a signal-aware main, the flags
// every training command takes (runtime, output, methods, memory options), libtorch
// set-up, tokenizer loading, and the trainer observers that print progress bars and
// JSON lines. It is the command layer: the library packages never import it.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/blockllm/blockllm-go/cmd/internal/launch"
	"github.com/blockllm/blockllm-go/torch"
)

// ErrInterrupted is wrapped by the error a command's run returns when it stopped early
// because its context was cancelled by a signal (after writing what it could).
var ErrInterrupted = errors.New("interrupted")

// SignalError is the cause of a context cancelled by Main's signal handler.
type SignalError struct{ Signal os.Signal }

func (e *SignalError) Error() string { return "received " + e.Signal.String() }

// Run is a command's body: it reads args, writes results to stdout and notes to stderr,
// and stops early (returning an error that wraps ErrInterrupted) when ctx is cancelled.
type Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Main runs a command and exits. SIGINT and SIGTERM (Ctrl-C, Slurm, Kubernetes,
// `docker stop`, `timeout`) cancel the context: a training command finishes its step,
// writes a checkpoint and returns; a second signal exits at once. Exit status: 0 on
// success and for -h, 1 on an error (printed as "name: message"), 128+signal (130 for
// SIGINT, 143 for SIGTERM) when the run was interrupted. An error libtorch reports is
// printed as an error, never as a Go stack trace; other panics are internal errors
// (their stack is printed only with BLOCKLLM_DEBUG=1).
//
// --nproc-per-node N (N > 1) starts N workers of the same command on this machine with
// torchrun's environment contract (cmd/internal/launch) instead of running it here.
func Main(name string, run Run) {
	args, code, done := launch.Main(os.Args[1:])
	if done {
		os.Exit(code)
	}
	os.Exit(main(name, run, args, os.Stdout, os.Stderr, true))
}

func main(name string, run Run, args []string, stdout, stderr io.Writer, handleSignals bool) (code int) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	if handleSignals {
		sigs := make(chan os.Signal, 2)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sigs)
		go func() {
			s, ok := <-sigs
			if !ok {
				return
			}
			fmt.Fprintf(stderr, "\n%s: %v: stopping after the current step (a checkpoint is written where the command has an output directory); send it again to stop at once\n", name, s)
			cancel(&SignalError{Signal: s})
			s = <-sigs
			fmt.Fprintf(stderr, "%s: %v again: exiting now\n", name, s)
			os.Exit(signalStatus(s))
		}()
	}
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(*torch.Error); ok {
				fmt.Fprintf(stderr, "%s: %v\n", name, e)
				code = 1
				return
			}
			fmt.Fprintf(stderr, "%s: internal error: %v\n", name, r)
			if os.Getenv("BLOCKLLM_DEBUG") != "" {
				stderr.Write(debug.Stack())
			} else {
				fmt.Fprintln(stderr, "(set BLOCKLLM_DEBUG=1 for the stack trace, and please report it)")
			}
			code = 2
		}
	}()
	err := run(ctx, args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	var se *SignalError
	if errors.Is(err, ErrInterrupted) && errors.As(context.Cause(ctx), &se) {
		return signalStatus(se.Signal)
	}
	return 1
}

// signalStatus is the shell's status for a process ended by s: 128 + its number.
func signalStatus(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 1
}

// Interrupted returns an error wrapping ErrInterrupted that says why (the signal, when
// ctx was cancelled by Main) and what to do next (hint, e.g. how to resume).
func Interrupted(ctx context.Context, hint string) error {
	why := "interrupted"
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		why = c.Error()
	}
	if hint != "" {
		return fmt.Errorf("%w (%s): %s", ErrInterrupted, why, hint)
	}
	return fmt.Errorf("%w (%s)", ErrInterrupted, why)
}
