package dist

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blockllm/blockllm-go/torch"
)

// TestCollectivesTwoRanks: two processes started with torchrun's variables (rank 0 hosts
// the TCPStore) run every collective over Gloo on 127.0.0.1 with exact results.
func TestCollectivesTwoRanks(t *testing.T) {
	port := freePort(t)
	ws := startWorkers(t, 2, "collectives", func(r int) []string { return torchrunEnv(r, 2, port) })
	waitAll(t, ws, 60*time.Second)
	for _, w := range ws {
		if !strings.Contains(w.output(), "\nok\n") {
			t.Errorf("rank %d did not finish its checks:\n%s", w.rank, w.output())
		}
		for _, l := range strings.Split(w.output(), "\n") {
			if strings.HasPrefix(l, "result ") {
				var res struct {
					RSNative bool `json:"rs_native"`
				}
				json.Unmarshal([]byte(strings.TrimPrefix(l, "result ")), &res)
				t.Logf("rank %d: libtorch %s, reduce-scatter native: %v", w.rank, torch.Version(), res.RSNative)
				if torch.VersionAtLeast(2, 0) != res.RSNative {
					t.Logf("note: reduce-scatter ran as %v on libtorch %s", map[bool]string{true: "Gloo's own", false: "all-reduce + slice"}[res.RSNative], torch.Version())
				}
			}
		}
	}
}

// TestSingleProcess: without torchrun's variables Init makes a one-rank group with no
// store and no process group; collectives are no-ops or copies.
func TestSingleProcess(t *testing.T) {
	for _, k := range []string{EnvRank, EnvWorldSize, EnvLocalRank, EnvLocalWorldSize, EnvMasterAddr, EnvMasterPort, EnvUseAgentStore} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	g, err := Init()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.Size() != 1 || g.Rank() != 0 || !g.IsMain() || g.root != nil || g.pg != nil || g.stopHB != nil {
		t.Fatalf("single-process group is not empty: size %d rank %d store %v pg %v", g.Size(), g.Rank(), g.root, g.pg)
	}
	s := torch.NewScope()
	defer s.Close()
	x := s.FromFloat64([]float64{1, 2, 3}, 3).To(torch.F32)
	for _, op := range []ReduceOp{Sum, Avg, Max, Min} {
		if err := g.AllReduce(x, op); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Broadcast(x, 0); err != nil {
		t.Fatal(err)
	}
	if err := g.Broadcast(x, 1); err == nil {
		t.Error("broadcast from rank 1 of 1 succeeded")
	}
	out := s.Zeros([]int64{1, 3}, torch.F32, torch.CPU)
	if err := g.AllGather(x, []*torch.Tensor{out}); err != nil {
		t.Fatal(err)
	}
	flat := s.Zeros([]int64{3}, torch.F32, torch.CPU)
	if err := g.AllGatherInto(x, flat); err != nil {
		t.Fatal(err)
	}
	rs := s.Zeros([]int64{3, 1}, torch.F32, torch.CPU)
	if err := g.ReduceScatter(x, rs, Avg); err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]*torch.Tensor{"x": x, "all_gather": out, "all_gather flat": flat, "reduce_scatter": rs} {
		if v := got.Float64s(); v[0] != 1 || v[1] != 2 || v[2] != 3 {
			t.Errorf("%s: %v, want [1 2 3]", name, v)
		}
	}
	if err := g.Barrier(); err != nil {
		t.Fatal(err)
	}
	if err := g.Agree("flags", "anything"); err != nil {
		t.Fatal(err)
	}
	if v, err := g.AllReduceFloat64s([]float64{2.5}, Avg); err != nil || v[0] != 2.5 {
		t.Fatalf("AllReduceFloat64s: %v %v", v, err)
	}
	if len(g.Stats()) != 0 {
		t.Errorf("a single-process group counted collectives: %v", g.Stats())
	}
}

// TestOneRankGroup: with SingleRankGroup a world of one still builds a TCPStore and a
// process group (Gloo; NCCL on cuda:0 with BLOCKLLM_DEVICE=cuda), and every collective
// gives its one-rank result through the backend.
func TestOneRankGroup(t *testing.T) {
	dev, err := torch.DeviceFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	backend := Gloo
	if dev.IsCUDA() {
		backend = NCCL
	}
	g, err := New(Config{WorldSize: 1, SingleRankGroup: true, Backend: backend, MasterAddr: "127.0.0.1",
		MasterPort: freePort(t), InitTimeout: 10 * time.Second, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := g.Close(); err != nil {
			t.Error(err)
		}
	}()
	if g.single() || g.root == nil {
		t.Fatal("no store or process group for SingleRankGroup")
	}
	s := torch.NewScope()
	defer s.Close()
	x := s.FromFloat64([]float64{1, 2, 3, 4}, 2, 2).ToDevice(torch.F32, dev)
	for _, op := range []ReduceOp{Sum, Avg, Max, Min} {
		if err := g.AllReduce(x, op); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Broadcast(x, 0); err != nil {
		t.Fatal(err)
	}
	flat := s.Zeros([]int64{4}, torch.F32, dev)
	if err := g.AllGatherInto(x, flat); err != nil {
		t.Fatal(err)
	}
	out := s.Zeros([]int64{4}, torch.F32, dev)
	if err := g.AllGather(x, []*torch.Tensor{out}); err != nil {
		t.Fatal(err)
	}
	rs := s.Zeros([]int64{4}, torch.F32, dev)
	if err := g.ReduceScatter(x, rs, Sum); err != nil {
		t.Fatal(err)
	}
	if err := g.Barrier(); err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]*torch.Tensor{"all_reduce": x.Reshape(4), "all_gather flat": flat, "all_gather": out, "reduce_scatter": rs} {
		if v := got.Float64s(); v[0] != 1 || v[1] != 2 || v[2] != 3 || v[3] != 4 {
			t.Errorf("%s: %v, want [1 2 3 4]", name, v)
		}
	}
	if st := g.Stats()["all_reduce"]; st.Calls != 4 || st.Bytes != 4*16 {
		t.Errorf("stats %+v, want 4 all-reduces of 16 bytes", st)
	}
}

// TestConfigFromEnv: torchrun's variables, their defaults, and errors that name the variable.
func TestConfigFromEnv(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	c, err := configFrom(env("RANK", "3", "WORLD_SIZE", "4", "LOCAL_WORLD_SIZE", "2", "MASTER_ADDR", "node0", "MASTER_PORT", "29500",
		"TORCHELASTIC_USE_AGENT_STORE", "True", "TORCHELASTIC_RESTART_COUNT", "2", "BLOCKLLM_DIST_TIMEOUT", "90s"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Rank != 3 || c.WorldSize != 4 || c.LocalRank != 1 || c.LocalWorldSize != 2 || c.MasterAddr != "node0" ||
		c.MasterPort != 29500 || !c.UseAgentStore || c.RestartCount != 2 || c.Timeout != 90*time.Second {
		t.Errorf("unexpected config %+v", c)
	}
	if c, err := configFrom(env()); err != nil || c.WorldSize != 1 {
		t.Errorf("no variables: %+v %v", c, err)
	}
	if c, err := configFrom(env("TORCHELASTIC_USE_AGENT_STORE", "true", "WORLD_SIZE", "1", "RANK", "0")); err != nil || c.UseAgentStore {
		t.Errorf("only \"True\" turns the agent store on (as in torch.distributed): %+v %v", c, err)
	}
	for _, tc := range []struct {
		kv   []string
		want string
	}{
		{[]string{"RANK", "0", "WORLD_SIZE", "2", "MASTER_PORT", "1"}, "MASTER_ADDR is not set"},
		{[]string{"RANK", "0", "WORLD_SIZE", "2", "MASTER_ADDR", "h"}, "MASTER_PORT is not set"},
		{[]string{"RANK", "2", "WORLD_SIZE", "2", "MASTER_ADDR", "h", "MASTER_PORT", "1"}, "RANK=2 is outside WORLD_SIZE=2"},
		{[]string{"RANK", "x", "WORLD_SIZE", "2"}, `RANK="x" is not an integer`},
		{[]string{"WORLD_SIZE", "2"}, "RANK is not"},
		{[]string{"RANK", "1"}, "WORLD_SIZE is not"},
		{[]string{"RANK", "0", "WORLD_SIZE", "2", "MASTER_ADDR", "h", "MASTER_PORT", "70000"}, "MASTER_PORT=70000 is not a TCP port"},
		{[]string{"RANK", "0", "WORLD_SIZE", "2", "LOCAL_RANK", "2", "LOCAL_WORLD_SIZE", "2"}, "LOCAL_RANK=2 is outside LOCAL_WORLD_SIZE=2"},
		{[]string{"BLOCKLLM_DIST_TIMEOUT", "soon"}, "BLOCKLLM_DIST_TIMEOUT"},
	} {
		if _, err := configFrom(env(tc.kv...)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: want an error with %q, got %v", tc.kv, tc.want, err)
		}
	}
}

// TestBadMasterAddr: a MASTER_ADDR that is not a host is refused before any connection;
// one where no store answers fails within the init timeout, naming the address.
func TestBadMasterAddr(t *testing.T) {
	for _, a := range []string{"http://node0", "node0:29500", "node 0", "node0/x"} {
		_, err := New(Config{Rank: 1, WorldSize: 2, MasterAddr: a, MasterPort: 29500})
		if err == nil || !strings.Contains(err.Error(), "MASTER_ADDR=") || !strings.Contains(err.Error(), "not a host name") {
			t.Errorf("MASTER_ADDR=%q: got %v", a, err)
		}
	}
	port := freePort(t)
	t0 := time.Now()
	_, err := New(Config{Rank: 1, WorldSize: 2, MasterAddr: "127.0.0.1", MasterPort: port, InitTimeout: 2 * time.Second})
	took := time.Since(t0)
	if err == nil || !strings.Contains(err.Error(), "cannot reach the store at MASTER_ADDR=127.0.0.1 MASTER_PORT="+strconv.Itoa(port)) {
		t.Fatalf("want a cannot-reach error, got %v", err)
	}
	if took > 10*time.Second {
		t.Errorf("took %v for a 2s init timeout", took)
	}
	t.Logf("%v (after %v)", err, took.Round(time.Millisecond))
}

// TestPortInUse: rank 0 cannot host the store on a port another program listens on.
func TestPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = New(Config{Rank: 0, WorldSize: 2, MasterAddr: "127.0.0.1", MasterPort: port, InitTimeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), "MASTER_PORT="+strconv.Itoa(port)) {
		t.Fatalf("want a port-in-use error naming MASTER_PORT=%d, got %v", port, err)
	}
	t.Log(err)
}

// TestJoinTimeoutNamesMissingRanks: rank 0 alone in a world of 3 names ranks 1 and 2.
func TestJoinTimeoutNamesMissingRanks(t *testing.T) {
	port := freePort(t)
	_, err := New(Config{Rank: 0, WorldSize: 3, MasterAddr: "127.0.0.1", MasterPort: port, InitTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "ranks 1, 2 did not join within 1s") {
		t.Fatalf("want ranks 1, 2 named, got %v", err)
	}
}

// TestLostPeer: kill rank 1 while rank 0 waits in an all-reduce: rank 0 returns an error
// naming rank 1 within seconds (its collective timeout is 60s), and closes at once.
func TestLostPeer(t *testing.T) {
	port := freePort(t)
	ws := startWorkers(t, 2, "kill", func(r int) []string {
		return append(torchrunEnv(r, 2, port), EnvTimeout+"=60s")
	})
	waitLine(t, ws[1], "ready", 30*time.Second)
	time.Sleep(200 * time.Millisecond) // rank 0 is inside its all-reduce
	killed := time.Now()
	ws[1].cmd.Process.Kill()
	line := waitLine(t, ws[0], "error ", 20*time.Second)
	detected := time.Since(killed)
	<-ws[0].done
	if code := exitCode(ws[0].err); code != 3 {
		t.Errorf("rank 0 exit %d, want 3; output:\n%s", code, ws[0].output())
	}
	if !strings.Contains(line, "lost peer rank 1 (pid "+strconv.Itoa(ws[1].cmd.Process.Pid)) || !strings.Contains(line, "Connection closed by peer") {
		t.Errorf("the error does not name rank 1 and its pid: %s", line)
	}
	if detected > 8*time.Second {
		t.Errorf("rank 0 noticed the lost peer after %v", detected)
	}
	if !strings.Contains(ws[0].output(), "closed in ") {
		t.Errorf("rank 0 did not close: %s", ws[0].output())
	}
	t.Logf("detected after %v: %s", detected.Round(time.Millisecond), strings.TrimPrefix(line, "error "))
}

// TestCollectiveTimeout: rank 1 is alive but skips an all-reduce that rank 0 runs with a
// 1s timeout (WithTimeout): rank 0 fails after about 1s plus the liveness check, names no
// lost peer, refuses the next collective and closes without waiting for rank 1.
func TestCollectiveTimeout(t *testing.T) {
	port := freePort(t)
	ws := startWorkers(t, 2, "timeout", func(r int) []string { return torchrunEnv(r, 2, port) })
	waitLine(t, ws[1], "ready", 30*time.Second)
	line := waitLine(t, ws[0], "error ", 30*time.Second)
	<-ws[0].done
	out := ws[0].output()
	if code := exitCode(ws[0].err); code != 3 {
		t.Errorf("rank 0 exit %d, want 3; output:\n%s", code, out)
	}
	if !strings.Contains(line, "timed out after 1s") || !strings.Contains(line, "no peer is lost") {
		t.Errorf("want a 1s timeout with no lost peer: %s", line)
	}
	for _, l := range strings.Split(out, "\n") {
		if d, ok := strings.CutPrefix(l, "closed in "); ok {
			if took, err := time.ParseDuration(d); err != nil || took > 2*time.Second {
				t.Errorf("close after a timeout took %s", d)
			}
		}
	}
	t.Log(strings.TrimPrefix(line, "error "))
}

// TestFileStore: the same job through a c10d FileStore instead of a TCPStore.
func TestFileStore(t *testing.T) {
	f := filepath.Join(t.TempDir(), "store")
	ws := startWorkers(t, 2, "filestore", func(r int) []string {
		return []string{EnvRank + "=" + strconv.Itoa(r), EnvWorldSize + "=2", "BLOCKLLM_DIST_TEST_STOREFILE=" + f,
			EnvMasterAddr + "=unused", EnvMasterPort + "=1"}
	})
	waitAll(t, ws, 60*time.Second)
}

// pythonTorch is Debian's python3-torch interpreter, or "" (with the reason) when it
// cannot import torch.distributed.
func pythonTorch() (string, string) {
	const py = "/usr/bin/python3"
	cmd := exec.Command(py, "-c", "import torch.distributed as d; assert d.is_available()")
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", py + " cannot import torch.distributed (apt-get install python3-torch): " + strings.TrimSpace(string(out))
	}
	return py, ""
}

const agentStoreScript = `
import datetime, json, sys, torch, torch.distributed as dist
n = int(sys.argv[1])
def host(**kw):
    return dist.TCPStore("127.0.0.1", 0, None, True, datetime.timedelta(seconds=60), wait_for_workers=False, **kw)
try:
    store = host()
except RuntimeError as e:  # a 2.x build without libuv refuses its default server
    if "libuv" not in str(e):
        raise
    store = host(use_libuv=False)
print("port", store.port, flush=True)
keys = ["/worker/attempt_0/blockllm/join/%d" % r for r in range(n)]
store.wait(keys)
pids = [json.loads(store.get(k))["pid"] for k in keys]
store.set("/worker/attempt_0/blockllm/from-python", "hello from torch " + torch.__version__)
print("pids", json.dumps(pids), flush=True)
sys.stdin.read()
`

// TestAgentStore: TORCHELASTIC_USE_AGENT_STORE=True with the store hosted outside the
// workers by PyTorch itself (Debian's python3-torch, torch.distributed.TCPStore): both
// ranks connect as clients under /worker/attempt_0, Python reads the ranks' join records
// and the ranks read Python's key, so the wire format is PyTorch's.
func TestAgentStore(t *testing.T) {
	py, why := pythonTorch()
	if py == "" {
		t.Skip(why)
	}
	cmd := exec.Command(py, "-c", agentStoreScript, "2")
	cmd.Dir = "/"
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	lines := bufio.NewScanner(stdout)
	// the line it prints (libraries may print before it)
	next := func(prefix string) string {
		for lines.Scan() {
			if v, ok := strings.CutPrefix(lines.Text(), prefix); ok {
				return v
			}
		}
		t.Fatalf("the Python store host printed no %q line", prefix)
		return ""
	}
	port, err := strconv.Atoi(next("port "))
	if err != nil {
		t.Fatal(err)
	}
	ws := startWorkers(t, 2, "agent", func(r int) []string {
		return append(torchrunEnv(r, 2, port), EnvUseAgentStore+"=True", EnvRestartCount+"=0")
	})
	waitAll(t, ws, 60*time.Second)
	var pids []int
	if v := next("pids "); json.Unmarshal([]byte(v), &pids) != nil || len(pids) != 2 {
		t.Fatalf("python: pids %q", v)
	}
	for r, w := range ws {
		if pids[r] != w.cmd.Process.Pid {
			t.Errorf("Python read pid %d for rank %d, which is pid %d", pids[r], r, w.cmd.Process.Pid)
		}
		if !strings.Contains(w.output(), "python-said hello from torch ") {
			t.Errorf("rank %d did not read Python's key:\n%s", r, w.output())
		}
	}
}
