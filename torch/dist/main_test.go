package dist

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blockllm/blockllm-go/torch"
)

// Multi-process tests re-execute this test binary: with workerEnv set, TestMain runs
// that worker scenario (worker_test.go) instead of the tests, under the torchrun
// variables the test gives it.
const workerEnv = "BLOCKLLM_DIST_TEST_WORKER"

func TestMain(m *testing.M) {
	if sc := os.Getenv(workerEnv); sc != "" {
		os.Exit(runWorker(sc))
	}
	torch.SetNumThreads(1)
	os.Exit(m.Run())
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// worker is one re-executed test process.
type worker struct {
	rank   int
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer // stdout and stderr, interleaved
	lines  chan string  // stdout lines as they come
	done   chan struct{}
	err    error // Wait's
	exited time.Time
}

func (w *worker) output() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.String()
}

type lockedWriter struct{ w *worker }

func (l lockedWriter) Write(p []byte) (int, error) {
	l.w.mu.Lock()
	defer l.w.mu.Unlock()
	return l.w.out.Write(p)
}

// cleanEnv is the environment without torchrun's variables of the test's own run.
func cleanEnv() []string {
	drop := map[string]bool{}
	for _, k := range []string{EnvRank, EnvWorldSize, EnvLocalRank, EnvLocalWorldSize, EnvMasterAddr, EnvMasterPort,
		EnvUseAgentStore, EnvRestartCount, EnvGlooSocketIfname, EnvTimeout, workerEnv} {
		drop[k] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	return env
}

// torchrunEnv is what torchrun gives rank r of n on one machine.
func torchrunEnv(r, n, port int) []string {
	return []string{
		EnvRank + "=" + strconv.Itoa(r), EnvWorldSize + "=" + strconv.Itoa(n),
		EnvLocalRank + "=" + strconv.Itoa(r), EnvLocalWorldSize + "=" + strconv.Itoa(n),
		EnvMasterAddr + "=127.0.0.1", EnvMasterPort + "=" + strconv.Itoa(port),
	}
}

// startWorkers starts n workers running scenario, each with env(rank) added to a clean
// environment, and stops any still running when the test ends.
func startWorkers(t *testing.T, n int, scenario string, env func(rank int) []string) []*worker {
	t.Helper()
	ws := make([]*worker, n)
	for r := 0; r < n; r++ {
		w := &worker{rank: r, lines: make(chan string, 100), done: make(chan struct{})}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(append(cleanEnv(), workerEnv+"="+scenario, "OMP_NUM_THREADS=1"), env(r)...)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = lockedWriter{w}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.cmd = cmd
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				line := sc.Text()
				lockedWriter{w}.Write([]byte(line + "\n"))
				select {
				case w.lines <- line:
				default:
				}
			}
			io.Copy(io.Discard, stdout)
			w.err = cmd.Wait()
			w.exited = time.Now()
			close(w.done)
		}()
		ws[r] = w
	}
	t.Cleanup(func() {
		for _, w := range ws {
			select {
			case <-w.done:
			default:
				w.cmd.Process.Kill()
				<-w.done
			}
		}
	})
	return ws
}

// waitAll waits up to d for every worker and fails the test if one fails or hangs.
func waitAll(t *testing.T, ws []*worker, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for _, w := range ws {
		select {
		case <-w.done:
		case <-deadline:
			for _, w := range ws {
				w.cmd.Process.Kill()
			}
			for _, w := range ws {
				<-w.done
				t.Logf("rank %d output:\n%s", w.rank, w.output())
			}
			t.Fatalf("workers did not finish within %v", d)
		}
	}
	for _, w := range ws {
		if w.err != nil {
			t.Errorf("rank %d: %v; output:\n%s", w.rank, w.err, w.output())
		}
	}
}

// waitLine waits up to d for a stdout line of w that starts with prefix.
func waitLine(t *testing.T, w *worker, prefix string, d time.Duration) string {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case l := <-w.lines:
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-w.done:
			t.Fatalf("rank %d exited (%v) before printing %q; output:\n%s", w.rank, w.err, prefix, w.output())
		case <-deadline:
			t.Fatalf("rank %d printed no %q within %v; output:\n%s", w.rank, prefix, d, w.output())
		}
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

var _ = fmt.Sprint
