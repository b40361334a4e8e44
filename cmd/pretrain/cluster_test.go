package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/torch"
)

// TestMain runs the command itself when BLOCKLLM_PRETRAIN_ARGS holds its arguments (a
// JSON list): the tests start real pretrain processes to signal and race them.
func TestMain(m *testing.M) {
	if a := os.Getenv("BLOCKLLM_PRETRAIN_ARGS"); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if os.Getenv("BLOCKLLM_LAUNCHED") != "" {
			// a worker of the built-in launcher: it re-ran this test binary, whose
			// arguments come from the environment, so drop the launcher's flag here as
			// the launcher does from a command's own arguments
			for i := 0; i+1 < len(args); i++ {
				if args[i] == "--nproc-per-node" {
					args = append(args[:i:i], args[i+2:]...)
					break
				}
			}
		}
		os.Args = append([]string{"pretrain"}, args...)
		main()
		return
	}
	os.Exit(m.Run())
}

// process is a pretrain command running in a child process, with its stdout read line
// by line.
type process struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr bytes.Buffer
}

func startPretrain(t *testing.T, args ...string) *process {
	t.Helper()
	return startPretrainEnv(t, nil, args...)
}

// startPretrainEnv is startPretrain with extra environment variables.
func startPretrainEnv(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	b, _ := json.Marshal(append([]string{"--progress=false", "--threads", "1"}, args...))
	p := &process{cmd: exec.Command(os.Args[0], "-test.run=^$"), lines: make(chan string, 1000)}
	p.cmd.Env = append(append(os.Environ(), "BLOCKLLM_PRETRAIN_ARGS="+string(b)), env...)
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	return p
}

// waitFor reads lines until one contains s (or the process ends).
func (p *process) waitFor(t *testing.T, s string) {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("the process ended before printing %q: %s", s, p.stderr.String())
			}
			if strings.Contains(l, s) {
				return
			}
		case <-timeout:
			t.Fatalf("no %q within 2 minutes", s)
		}
	}
}

// wait drains stdout and returns the exit status and the result line's fields.
func (p *process) wait(t *testing.T) (int, map[string]any) {
	t.Helper()
	var res map[string]any
	for l := range p.lines {
		if strings.Contains(l, `"event":"result"`) {
			require.NoError(t, json.Unmarshal([]byte(l), &res))
		}
	}
	err := p.cmd.Wait()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return code, res
}

// TestSignalCheckpointAndResume: SIGINT (Ctrl-C) and SIGTERM (Slurm, Kubernetes, docker
// stop) make a running pretrain of the demo finish its step, write a checkpoint and exit
// with status 130 or 143; the run resumed from that checkpoint ends at the same validation
// perplexity, to the last digit, and with the same weights, byte for byte, as an
// uninterrupted run.
func TestSignalCheckpointAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	common := []string{"--json", "--steps", "30", "--seq-len", "32", "--batch-size", "4", "--eval-blocks", "4",
		"--eval-every", "30", "--method", "adamw", "--lr", "1e-2", "--deterministic"}
	full := t.TempDir()
	p := startPretrain(t, append(common, "--out", full)...)
	code, want := p.wait(t)
	require.Equal(t, 0, code, p.stderr.String())
	require.NotNil(t, want)
	a, err := os.ReadFile(filepath.Join(full, "adamw", "final", "model.safetensors"))
	require.NoError(t, err)

	for _, c := range []struct {
		sig  syscall.Signal
		code int
		name string
	}{{syscall.SIGINT, 130, "interrupt"}, {syscall.SIGTERM, 143, "terminated"}} {
		cut := t.TempDir()
		p = startPretrain(t, append(common, "--out", cut)...)
		p.waitFor(t, `"step":3,`)
		require.NoError(t, p.cmd.Process.Signal(c.sig))
		code, _ = p.wait(t)
		assert.Equal(t, c.code, code, "exit status after %v: %s", c.sig, p.stderr.String())
		assert.Contains(t, p.stderr.String(), "received "+c.name)
		assert.Contains(t, p.stderr.String(), "--resume latest --out "+cut)
		ckpts, err := filepath.Glob(filepath.Join(cut, "adamw", "checkpoints", "step-*"))
		require.NoError(t, err)
		require.Len(t, ckpts, 1, "the checkpoint written on %v", c.sig)
		assert.NoFileExists(t, filepath.Join(cut, "adamw", "final", "model.safetensors"), "no final model for an unfinished run")

		p = startPretrain(t, append(common, "--out", cut, "--resume", "latest")...)
		code, got := p.wait(t)
		require.Equal(t, 0, code, p.stderr.String())
		assert.Equal(t, want["val_ppl_after"], got["val_ppl_after"], "%v: final perplexity, resumed vs uninterrupted", c.sig)
		b, err := os.ReadFile(filepath.Join(cut, "adamw", "final", "model.safetensors"))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(a, b), "%v: final weights, resumed vs uninterrupted", c.sig)
	}
}

// TestConcurrentRunsOneOut: while a run holds --out, a second run into it cannot
// proceed (whatever its flags), and after the first has finished a new run into it is
// refused unless --resume or --overwrite is given.
func TestConcurrentRunsOneOut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	out := t.TempDir()
	common := []string{"--seq-len", "16", "--batch-size", "2", "--eval-blocks", "2", "--method", "adamw"}
	p := startPretrain(t, append(common, "--json", "--steps", "100000", "--out", out)...)
	p.waitFor(t, `"event":"step"`)
	_, _, err := runArgs(t, append(common, "--steps", "2", "--out", out)...)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is in use by process "+fmt.Sprint(p.cmd.Process.Pid))
	_, _, err = runArgs(t, append(common, "--steps", "2", "--out", out, "--overwrite")...)
	assert.ErrorContains(t, err, "is in use by process", "--overwrite does not take a directory in use either")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	code, _ := p.wait(t)
	assert.Equal(t, 130, code, p.stderr.String())

	_, _, err = runArgs(t, append(common, "--steps", "2", "--out", out)...)
	assert.ErrorContains(t, err, "holds the pretrain run started")
	_, _, err = runArgs(t, append(common, "--steps", "2", "--out", out, "--overwrite")...)
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(out, "adamw", "final", "model.safetensors"))
}

// TestModelDirWithoutWeights: a directory given as --model must hold loadable
// safetensors weights; a pickle, shards without their index, or a bare config.json are
// refused before any training (never a silent random initialisation).
func TestModelDirWithoutWeights(t *testing.T) {
	require.NoError(t, torch.Init())
	c, err := config.LlamaPreset("llama-tiny")
	require.NoError(t, err)
	c.VocabSize = 1024
	m, err := llama.New(c, llama.Options{}, 1)
	require.NoError(t, err)
	src := t.TempDir()
	require.NoError(t, m.Save(src))
	m.Close()
	tok, err := os.ReadFile(tinyTok)
	require.NoError(t, err)
	cfgJSON, err := os.ReadFile(filepath.Join(src, "config.json"))
	require.NoError(t, err)
	mk := func(files map[string][]byte) string {
		d := t.TempDir()
		files["config.json"] = cfgJSON
		files["tokenizer.json"] = tok
		for n, b := range files {
			require.NoError(t, os.WriteFile(filepath.Join(d, n), b, 0o644))
		}
		return d
	}
	text := filepath.Join(t.TempDir(), "text.txt")
	require.NoError(t, os.WriteFile(text, []byte(strings.Repeat("the quick brown fox jumps over the lazy dog. ", 200)), 0o644))
	for name, c := range map[string]struct {
		files map[string][]byte
		want  string
	}{
		"pickle":            {map[string][]byte{"pytorch_model.bin": []byte("PK")}, "only pytorch_model.bin found: PyTorch pickle checkpoints are not supported"},
		"shards, no index":  {map[string][]byte{"model-00001-of-00002.safetensors": nil, "model-00002-of-00002.safetensors": nil}, "no model.safetensors or model.safetensors.index.json: a sharded checkpoint needs its index"},
		"config.json alone": {map[string][]byte{}, "no model.safetensors or model.safetensors.index.json in directory"},
	} {
		d := mk(c.files)
		out := t.TempDir()
		_, _, err := runArgs(t, "--model", d, "--data", text, "--steps", "1", "--seq-len", "16", "--out", out)
		if assert.Error(t, err, name) {
			assert.Contains(t, err.Error(), c.want, name)
			assert.Contains(t, err.Error(), "pass --model "+filepath.Join(d, "config.json"), name)
		}
		assert.NoDirExists(t, filepath.Join(out, "blockllm", "final"), name)
	}
}

// TestOutputChecksFirst: unusable output paths and odd flag values are refused before
// any work.
func TestOutputChecksFirst(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--plot", filepath.Join(file, "loss.png")}, "--plot"},
		{[]string{"--plot", "loss.txt"}, "must end in .png"},
		{[]string{"--out", file}, "output directory"},
		{[]string{"--warmup", "-5"}, "--warmup -5 must not be negative"},
		{[]string{"--threads", "-1"}, "--threads -1"},
		{[]string{"--lr", "1e38"}, "above 1e+30"},
		{[]string{"--diverge-factor", "0.5"}, "--diverge-factor 0.5 must be above 1"},
		{[]string{"--resume", "latest", "--out", t.TempDir(), "--overwrite"}, "contradict"},
	} {
		start := time.Now()
		_, _, err := runArgs(t, append(c.args, "--steps", "1")...)
		if assert.Error(t, err, "%v", c.args) {
			assert.Contains(t, err.Error(), c.want, "%v", c.args)
		}
		assert.Less(t, time.Since(start), 20*time.Second, "%v refused before training", c.args)
	}
}

// torchrunEnv is torchrun's environment contract for rank r of n on this machine.
func torchrunEnv(r, n, port int) []string {
	return []string{"RANK=" + fmt.Sprint(r), "LOCAL_RANK=" + fmt.Sprint(r), "WORLD_SIZE=" + fmt.Sprint(n),
		"LOCAL_WORLD_SIZE=" + fmt.Sprint(n), "GROUP_RANK=0", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + fmt.Sprint(port)}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// pythonStoreHost starts Debian's python3-torch hosting a TCPStore, as torchrun's agent
// does, and returns its port; it skips the test when /usr/bin/python3 lacks torch.
func pythonStoreHost(t *testing.T) int {
	const py = "/usr/bin/python3"
	check := exec.Command(py, "-c", "import torch.distributed as d; assert d.is_available()")
	check.Dir = "/"
	if out, err := check.CombinedOutput(); err != nil {
		t.Skipf("%s cannot import torch.distributed (apt-get install python3-torch): %s", py, out)
	}
	cmd := exec.Command(py, "-c", `
import datetime, sys, torch.distributed as dist
def host(**kw):
    return dist.TCPStore("127.0.0.1", 0, None, True, datetime.timedelta(seconds=120), wait_for_workers=False, **kw)
try:
    store = host()
except RuntimeError as e:
    if "libuv" not in str(e):
        raise
    store = host(use_libuv=False)
print("port", store.port, flush=True)
sys.stdin.read()
`)
	cmd.Dir = "/"
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "port "); ok {
			var port int
			_, err := fmt.Sscan(v, &port)
			require.NoError(t, err)
			return port
		}
	}
	t.Fatal("the Python store host printed no port")
	return 0
}

// TestTorchrunContract: pretrain runs as two workers started the way torchrun starts
// them (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, ...), with rank 0 hosting the store
// and with the store hosted outside the workers by PyTorch itself
// (TORCHELASTIC_USE_AGENT_STORE=True); rank 0 alone prints the result, which equals one
// process on twice the batch; the built-in launcher (--nproc-per-node 2) gives the same.
func TestTorchrunContract(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	common := []string{"--json", "--steps", "6", "--seq-len", "32", "--eval-blocks", "4", "--method", "adamw,blockllm", "--lr", "1e-2"}
	results := func(p *process) map[string]float64 {
		out := map[string]float64{}
		for l := range p.lines {
			var ev map[string]any
			if json.Unmarshal([]byte(l), &ev) == nil && ev["event"] == "result" {
				out[ev["method"].(string)] = ev["val_ppl_after"].(float64)
			}
		}
		return out
	}
	p := startPretrain(t, append(common, "--batch-size", "4")...)
	one := results(p)
	require.NoError(t, p.cmd.Wait())
	require.Len(t, one, 2)

	check := func(name string, env func(r int) []string) {
		var ps [2]*process
		for r := range ps {
			ps[r] = startPretrainEnv(t, env(r), append(common, "--batch-size", "2")...)
		}
		got := results(ps[0])
		rest := results(ps[1])
		for r, p := range ps {
			require.NoError(t, p.cmd.Wait(), "%s: rank %d: %s", name, r, p.stderr.String())
		}
		assert.Empty(t, rest, "%s: only rank 0 prints results", name)
		require.Len(t, got, 2, name)
		for m, v := range one {
			assert.InDelta(t, v, got[m], 1e-4*v, "%s: %s: two ranks vs one process on twice the batch", name, m)
		}
	}
	port := freePort(t)
	check("rank 0 hosts the store", func(r int) []string { return torchrunEnv(r, 2, port) })
	agent := pythonStoreHost(t)
	check("agent store", func(r int) []string {
		return append(torchrunEnv(r, 2, agent), "TORCHELASTIC_USE_AGENT_STORE=True", "TORCHELASTIC_RESTART_COUNT=0")
	})
	p = startPretrain(t, append(common, "--batch-size", "2", "--nproc-per-node", "2")...)
	got := results(p)
	require.NoError(t, p.cmd.Wait(), p.stderr.String())
	for m, v := range one {
		assert.InDelta(t, v, got[m], 1e-4*v, "--nproc-per-node 2: %s", m)
	}
}
