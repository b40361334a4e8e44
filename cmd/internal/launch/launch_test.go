package launch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/blockllm/blockllm-go/torch/dist"
)

// The tests launch this test binary: with modeEnv set, TestMain plays a worker.
const modeEnv = "BLOCKLLM_LAUNCH_TEST_MODE"

func TestMain(m *testing.M) {
	if mode := os.Getenv(modeEnv); mode != "" {
		os.Exit(worker(mode))
	}
	os.Exit(m.Run())
}

func worker(mode string) int {
	rank := os.Getenv("RANK")
	switch mode {
	case "print":
		fmt.Printf("rank=%s local=%s world=%s lws=%s addr=%s port=%s omp=%s launched=%s\n", rank, os.Getenv("LOCAL_RANK"),
			os.Getenv("WORLD_SIZE"), os.Getenv("LOCAL_WORLD_SIZE"), os.Getenv("MASTER_ADDR"), os.Getenv("MASTER_PORT"),
			os.Getenv("OMP_NUM_THREADS"), os.Getenv(WorkerEnv))
		fmt.Fprintf(os.Stderr, "note from %s\npartial line from %s", rank, rank)
		return 0
	case "dist":
		// the launcher's contract is what torch/dist.Init reads
		g, err := dist.Init()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer g.Close()
		v, err := g.AllReduceFloat64s([]float64{float64(g.Rank() + 1)}, dist.Sum)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Printf("rank %d of %d: sum %g\n", g.Rank(), g.Size(), v[0])
		return 0
	case "sleep":
		time.Sleep(time.Minute)
		return 0
	case "fail":
		if rank == "1" {
			fmt.Fprintln(os.Stderr, "loading data\rstep 1/10\nlaunch-test: bad flag --sparsity=2")
			return 3
		}
		time.Sleep(time.Minute) // stopped by the launcher
		return 0
	}
	return 9
}

func run(t *testing.T, o Options) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	o.Exe, o.Args, o.Stdout, o.Stderr = os.Args[0], []string{"-test.run=^$"}, &out, &errb
	err := Run(context.Background(), o)
	return out.String(), errb.String(), err
}

func env(mode string) []string {
	var e []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OMP_NUM_THREADS=") {
			e = append(e, kv)
		}
	}
	return append(e, modeEnv+"="+mode)
}

// TestRunContract: each worker gets torchrun's variables with one free port; rank 0's
// output passes through, rank 1's lines come prefixed on stderr.
func TestRunContract(t *testing.T) {
	stdout, stderr, err := run(t, Options{NProc: 2, Env: env("print")})
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var port string
	for _, l := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(l, "rank=0 ") {
			port = l[strings.Index(l, "port=")+5:]
			port = port[:strings.Index(port, " ")]
		}
	}
	if port == "" {
		t.Fatalf("rank 0's line is not on stdout:\n%s", stdout)
	}
	omp := max(1, runtime.NumCPU()/2)
	for r := 0; r < 2; r++ {
		want := fmt.Sprintf("rank=%d local=%d world=2 lws=2 addr=127.0.0.1 port=%s omp=%d launched=1", r, r, port, omp)
		if r == 0 && !strings.Contains(stdout, want+"\n") {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
		if r == 1 && !strings.Contains(stderr, "[rank 1] "+want+"\n") {
			t.Errorf("stderr lacks %q:\n%s", "[rank 1] "+want, stderr)
		}
	}
	for _, want := range []string{"note from 0\n", "partial line from 0", "[rank 1] note from 1\n", "[rank 1] partial line from 1\n"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stdout, "rank=1") || strings.Contains(stderr, "[rank 0]") {
		t.Errorf("rank 1 on stdout or rank 0 prefixed:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
}

// TestRunHide: Others = Hide shows rank 0 only.
func TestRunHide(t *testing.T) {
	_, stderr, err := run(t, Options{NProc: 2, Env: env("print"), Others: Hide})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stderr, "[rank 1]") || !strings.Contains(stderr, "note from 0") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

// TestRunDist: workers started by the launcher form a torch/dist group (Gloo on
// 127.0.0.1) and all-reduce.
func TestRunDist(t *testing.T) {
	stdout, stderr, err := run(t, Options{NProc: 2, Env: env("dist")})
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "rank 0 of 2: sum 3\n") || !strings.Contains(stderr, "[rank 1] rank 1 of 2: sum 3\n") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
}

// TestRunFailure: rank 1 exits with status 3: the launcher stops rank 0 (which would
// sleep a minute) and names rank 1, its status and its last stderr line.
func TestRunFailure(t *testing.T) {
	t0 := time.Now()
	_, stderr, err := run(t, Options{NProc: 2, Env: env("fail"), Grace: 2 * time.Second})
	took := time.Since(t0)
	var we *WorkerError
	if !errors.As(err, &we) {
		t.Fatalf("want a *WorkerError, got %v\n%s", err, stderr)
	}
	if we.Rank != 1 || we.ExitCode != 3 || we.LastLine != "launch-test: bad flag --sparsity=2" {
		t.Errorf("got %+v", we)
	}
	if !strings.Contains(err.Error(), "worker rank 1 (pid ") || !strings.Contains(err.Error(), "exit status 3: launch-test: bad flag --sparsity=2") {
		t.Errorf("message: %v", err)
	}
	if took > 10*time.Second {
		t.Errorf("the launcher took %v: rank 0 was not stopped", took)
	}
	t.Logf("%v (after %v)", err, took.Round(time.Millisecond))
}

// TestRunInterrupted: cancelling the context stops the workers.
func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	t0 := time.Now()
	err := Run(ctx, Options{NProc: 2, Exe: os.Args[0], Args: []string{"-test.run=^$"}, Env: env("sleep"),
		Stdout: &out, Stderr: &out, Grace: time.Second})
	if err == nil || !strings.Contains(err.Error(), "interrupted") || time.Since(t0) > 10*time.Second {
		t.Fatalf("err %v after %v", err, time.Since(t0))
	}
}

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		n    int
		rest []string
	}{
		{[]string{"--model", "x", "--nproc-per-node", "2", "--steps", "3"}, 2, []string{"--model", "x", "--steps", "3"}},
		{[]string{"--nproc-per-node=4"}, 4, []string{}},
		{[]string{"--nproc_per_node", "3", "a"}, 3, []string{"a"}},
		{[]string{"-nproc-per-node=2", "a"}, 2, []string{"a"}},
		{[]string{"a", "--", "--nproc-per-node", "2"}, 0, []string{"a", "--", "--nproc-per-node", "2"}},
		{[]string{"--nproc"}, 0, []string{"--nproc"}},
	} {
		n, rest, err := ParseArgs(tc.in)
		if err != nil || n != tc.n || !reflect.DeepEqual(rest, tc.rest) {
			t.Errorf("%q: got %d %q %v", tc.in, n, rest, err)
		}
	}
	for _, in := range [][]string{{"--nproc-per-node"}, {"--nproc-per-node", "two"}, {"--nproc-per-node=0"}} {
		if _, _, err := ParseArgs(in); err == nil || !strings.Contains(err.Error(), "nproc") {
			t.Errorf("%q: want an error, got %v", in, err)
		}
	}
}

// TestMainUnderLauncher: asking for workers inside a worker is refused; one worker (or
// none asked) leaves the args to the command.
func TestMainUnderLauncher(t *testing.T) {
	t.Setenv("RANK", "0")
	t.Setenv("WORLD_SIZE", "2")
	if _, code, done := Main([]string{"--nproc-per-node", "2"}); !done || code != 2 {
		t.Errorf("nested launch: done %v code %d", done, code)
	}
	if rest, _, done := Main([]string{"--nproc-per-node", "1", "--x"}); done || !reflect.DeepEqual(rest, []string{"--x"}) {
		t.Errorf("one worker: done %v rest %q", done, rest)
	}
}

// TestWorkerEnvironment: the contract replaces inherited torchrun variables and keeps a
// user's OMP_NUM_THREADS.
func TestWorkerEnvironment(t *testing.T) {
	e := WorkerEnvironment([]string{"RANK=7", "MASTER_PORT=1", "OMP_NUM_THREADS=5", "HOME=/h"}, 1, 4, 29500)
	got := map[string][]string{}
	for _, kv := range e {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = append(got[k], v)
	}
	for k, want := range map[string]string{"RANK": "1", "MASTER_PORT": "29500", "OMP_NUM_THREADS": "5", "HOME": "/h",
		"WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "TORCHELASTIC_USE_AGENT_STORE": "False"} {
		if !reflect.DeepEqual(got[k], []string{want}) {
			t.Errorf("%s: %q, want [%s]", k, got[k], want)
		}
	}
}
