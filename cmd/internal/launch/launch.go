// Package launch is the built-in launcher of the commands: `--nproc-per-node N` re-runs
// the current binary N times on this machine with torchrun's environment contract
// (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT=a
// free port, and torchrun's other variables), so that each worker joins the job with
// torch/dist.Init exactly as under `torchrun --no-python --nproc-per-node N`.
//
// Output: rank 0's stdout and stderr pass through unchanged (progress bars included);
// the other ranks' lines go to stderr prefixed "[rank N] " (Options.Others = Hide drops
// them). The launcher waits for every worker; when one fails it stops the others
// (SIGTERM, then SIGKILL after a grace period) and returns a *WorkerError naming the
// first failed worker, its exit status and its last line of stderr.
package launch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Flag is the launcher's option, as torchrun spells it (--nproc_per_node is accepted too).
const Flag = "--nproc-per-node"

// WorkerEnv marks a process started by this launcher.
const WorkerEnv = "BLOCKLLM_LAUNCHED"

// Output says how the ranks other than 0 are shown.
type Output int

const (
	// Prefix writes their stdout and stderr lines to stderr, prefixed "[rank N] ".
	Prefix Output = iota
	// Hide drops them (they still name a failed worker's last line).
	Hide
)

// DefaultGrace is how long workers get between SIGTERM and SIGKILL.
const DefaultGrace = 5 * time.Second

// Options configure Run.
type Options struct {
	NProc  int      // workers to start (>= 1)
	Args   []string // their arguments (without Flag)
	Exe    string   // the binary (default: this one, os.Executable)
	Env    []string // their base environment (default: os.Environ()); torchrun's variables in it are replaced
	Stdout io.Writer
	Stderr io.Writer
	Others Output
	Grace  time.Duration // SIGTERM to SIGKILL (default DefaultGrace)
	Port   int           // MASTER_PORT (default: a free port on 127.0.0.1)
}

// WorkerError is the first worker that failed.
type WorkerError struct {
	Rank     int
	PID      int
	Status   string // "exit status 3", "signal: killed"
	ExitCode int    // -1 when it was killed by a signal
	LastLine string // its last non-empty line of stderr (of stdout when stderr was empty)
}

func (e *WorkerError) Error() string {
	s := fmt.Sprintf("launch: worker rank %d (pid %d) failed: %s", e.Rank, e.PID, e.Status)
	if e.LastLine != "" {
		s += ": " + e.LastLine
	}
	return s
}

// ParseArgs finds Flag (also --nproc_per_node, with one or two dashes, "N" as the next
// argument or after "=") in args, before any "--", and returns N (0 when absent) and the
// args without it.
func ParseArgs(args []string) (n int, rest []string, err error) {
	rest = make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || (name != "nproc-per-node" && name != "nproc_per_node") {
			rest = append(rest, a)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return 0, nil, fmt.Errorf("launch: %s needs a number of workers", a)
			}
			i++
			val = args[i]
		}
		n, err = strconv.Atoi(val)
		if err != nil || n < 1 {
			return 0, nil, fmt.Errorf("launch: %s=%q: want a number of workers >= 1", Flag, val)
		}
	}
	return n, rest, nil
}

// IsWorker reports whether this process already runs under a launcher: this one, or one
// that set torchrun's RANK and WORLD_SIZE.
func IsWorker() bool {
	if os.Getenv(WorkerEnv) != "" {
		return true
	}
	return os.Getenv("RANK") != "" && os.Getenv("WORLD_SIZE") != ""
}

// Main handles Flag for a command's main. When args ask for more than one worker and
// this process is not one already, it runs them on this machine (stopping them on
// SIGINT/SIGTERM), prints a failure on stderr and returns done with the exit code for
// os.Exit. Otherwise it returns the args without Flag for the command's own parsing.
//
//	args, code, done := launch.Main(os.Args[1:])
//	if done {
//		os.Exit(code)
//	}
func Main(args []string) (rest []string, code int, done bool) {
	n, rest, err := ParseArgs(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return nil, 2, true
	}
	if n <= 1 {
		return rest, 0, false
	}
	if IsWorker() {
		fmt.Fprintf(os.Stderr, "launch: %s %d in a process that a launcher started already (RANK=%s WORLD_SIZE=%s): drop %s, the launcher sets the workers\n",
			Flag, n, os.Getenv("RANK"), os.Getenv("WORLD_SIZE"), Flag)
		return nil, 2, true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = Run(ctx, Options{NProc: n, Args: rest})
	if err == nil {
		return nil, 0, true
	}
	fmt.Fprintln(os.Stderr, err)
	var we *WorkerError
	if errors.As(err, &we) && we.ExitCode > 0 {
		return nil, we.ExitCode, true
	}
	return nil, 1, true
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago (as torchrun
// picks one).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("launch: no free port on 127.0.0.1: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// contract lists the variables the launcher owns (replaced in the base environment).
var contract = []string{"RANK", "LOCAL_RANK", "GROUP_RANK", "ROLE_RANK", "ROLE_NAME", "WORLD_SIZE", "LOCAL_WORLD_SIZE",
	"GROUP_WORLD_SIZE", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RESTART_COUNT",
	"TORCHELASTIC_MAX_RESTARTS", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_USE_AGENT_STORE", WorkerEnv}

// WorkerEnvironment is the environment of worker rank r of n: base without the contract's
// variables, then torchrun's values (one machine, rank 0 hosts the store on port), and
// OMP_NUM_THREADS = cores / n unless base sets it.
func WorkerEnvironment(base []string, r, n, port int) []string {
	own := map[string]bool{}
	for _, k := range contract {
		own[k] = true
	}
	env := make([]string, 0, len(base)+len(contract)+1)
	hasOMP := false
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if own[k] {
			continue
		}
		if k == "OMP_NUM_THREADS" {
			hasOMP = true
		}
		env = append(env, kv)
	}
	rs, ns := strconv.Itoa(r), strconv.Itoa(n)
	env = append(env,
		"RANK="+rs, "LOCAL_RANK="+rs, "GROUP_RANK=0", "ROLE_RANK="+rs, "ROLE_NAME=default",
		"WORLD_SIZE="+ns, "LOCAL_WORLD_SIZE="+ns, "GROUP_WORLD_SIZE=1", "ROLE_WORLD_SIZE="+ns,
		"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port),
		"TORCHELASTIC_RESTART_COUNT=0", "TORCHELASTIC_MAX_RESTARTS=0", "TORCHELASTIC_RUN_ID=none",
		"TORCHELASTIC_USE_AGENT_STORE=False", WorkerEnv+"=1")
	if !hasOMP {
		env = append(env, "OMP_NUM_THREADS="+strconv.Itoa(max(1, runtime.NumCPU()/n)))
	}
	return env
}

type proc struct {
	rank      int
	cmd       *exec.Cmd
	tail      *tail
	out, errw *prefixWriter // other ranks' prefixed streams (nil for rank 0 and Hide)
	err       error
}

// Run starts o.NProc workers and waits for all of them. When one fails (or ctx ends) it
// stops the others and returns the first failure.
func Run(ctx context.Context, o Options) error {
	if o.NProc < 1 {
		return fmt.Errorf("launch: %d workers", o.NProc)
	}
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("launch: cannot find this program to re-run it: %v", err)
		}
		o.Exe = exe
	}
	if o.Env == nil {
		o.Env = os.Environ()
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.Port == 0 {
		p, err := FreePort()
		if err != nil {
			return err
		}
		o.Port = p
	}
	errOut := &syncWriter{w: o.Stderr}
	procs := make([]*proc, o.NProc)
	exited := make(chan *proc, o.NProc)
	var copies sync.WaitGroup
	started := 0
	var startErr error
	for r := 0; r < o.NProc; r++ {
		p := &proc{rank: r, tail: &tail{}}
		cmd := exec.Command(o.Exe, o.Args...)
		cmd.Env = WorkerEnvironment(o.Env, r, o.NProc, o.Port)
		var stdout, stderr io.Writer
		switch {
		case r == 0:
			stdout, stderr = o.Stdout, io.MultiWriter(o.Stderr, p.tail)
		case o.Others == Hide:
			stdout, stderr = p.tail, p.tail
		default:
			p.out = &prefixWriter{prefix: fmt.Sprintf("[rank %d] ", r), w: errOut}
			p.errw = &prefixWriter{prefix: fmt.Sprintf("[rank %d] ", r), w: errOut}
			stdout, stderr = p.out, io.MultiWriter(p.errw, p.tail)
		}
		outPipe, err := cmd.StdoutPipe()
		if err != nil {
			startErr = err
			break
		}
		errPipe, err := cmd.StderrPipe()
		if err != nil {
			startErr = err
			break
		}
		if err := cmd.Start(); err != nil {
			startErr = fmt.Errorf("launch: cannot start worker rank %d (%s): %v", r, o.Exe, err)
			break
		}
		p.cmd = cmd
		procs[r] = p
		started++
		var pipes sync.WaitGroup
		pipes.Add(2)
		copies.Add(1)
		go func() { io.Copy(stdout, outPipe); pipes.Done() }()
		go func() { io.Copy(stderr, errPipe); pipes.Done() }()
		go func() {
			pipes.Wait() // read everything before Wait closes the pipes
			p.err = cmd.Wait()
			p.out.Flush()
			p.errw.Flush()
			copies.Done()
			exited <- p
		}()
	}
	var first error
	if startErr != nil {
		first = startErr
	}
	stopping := false
	stop := func(sig os.Signal) {
		for _, p := range procs {
			if p != nil {
				p.cmd.Process.Signal(sig) // os.ErrProcessDone for one that has exited
			}
		}
	}
	var killTimer <-chan time.Time
	stopAll := func() {
		if stopping {
			return
		}
		stopping = true
		stop(syscall.SIGTERM)
		killTimer = time.After(o.Grace)
	}
	if startErr != nil {
		stopAll()
	}
	done := ctx.Done()
	for left := started; left > 0; {
		select {
		case p := <-exited:
			left--
			if p.err != nil && first == nil && !stopping {
				first = workerError(p)
				stopAll()
			}
		case <-done:
			done = nil
			if first == nil {
				first = fmt.Errorf("launch: interrupted (%v): stopped the workers", ctx.Err())
			}
			stopAll()
		case <-killTimer:
			killTimer = nil
			stop(syscall.SIGKILL)
		}
	}
	copies.Wait()
	return first
}

func workerError(p *proc) *WorkerError {
	e := &WorkerError{Rank: p.rank, PID: p.cmd.Process.Pid, Status: p.err.Error(), ExitCode: -1, LastLine: p.tail.last()}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		e.ExitCode = ee.ExitCode()
	}
	return e
}

// tail keeps the end of a worker's output for its error message.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailBytes = 8 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*tailBytes {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-tailBytes:]...)
	}
	t.mu.Unlock()
	return len(p), nil
}

// last is the last non-empty line (lines end at \n or \r, as progress bars redraw).
func (t *tail) last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.FieldsFunc(string(t.buf), func(r rune) bool { return r == '\n' || r == '\r' })
	for i := len(lines) - 1; i >= 0; i-- {
		if s := strings.TrimSpace(lines[i]); s != "" {
			return s
		}
	}
	return ""
}

// syncWriter serialises writes of whole lines from several workers.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// prefixWriter writes complete lines, each with prefix, to w.
type prefixWriter struct {
	mu     sync.Mutex
	prefix string
	w      io.Writer
	part   []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.part = append(p.part, b...)
	for {
		i := bytes.IndexByte(p.part, '\n')
		if i < 0 {
			break
		}
		line := append([]byte(p.prefix), p.part[:i+1]...)
		p.part = p.part[i+1:]
		if _, err := p.w.Write(line); err != nil {
			return len(b), err
		}
	}
	return len(b), nil
}

// Flush writes an unterminated last line (nil: nothing to do).
func (p *prefixWriter) Flush() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.part) > 0 {
		p.w.Write(append(append([]byte(p.prefix), p.part...), '\n'))
		p.part = nil
	}
}
