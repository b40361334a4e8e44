// Package dist is data parallelism's runtime for blockllm-go: c10d, PyTorch's
// distributed engine inside the libtorch the shim links, driven from Go. A Group joins a
// job through a c10d store (a TCPStore hosted by rank 0 or by the launcher, or a
// FileStore) and runs collectives on tensors through a c10d process group: Gloo for CPU
// tensors, NCCL for CUDA tensors.
//
// Init reads torchrun's environment contract (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE), so a
// command built on it runs under `torchrun --no-python`, Slurm or Kubernetes launchers
// that set the same variables, and cmd/internal/launch. World size 1 (or no variables)
// costs nothing: no store, no sockets, collectives are no-ops or copies.
//
// Every rank must issue the same collectives in the same order (as with
// torch.distributed). Each collective has a timeout (the group's, or a view's from
// Group.WithTimeout); a failure comes back as a *Error that names lost peers (ranks that
// stopped heart-beating through the store) or the timeout, and leaves the group
// unusable: close it and exit.
package dist

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/blockllm/blockllm-go/cgo"
	"github.com/blockllm/blockllm-go/torch"
)

// heartbeat period, and how long a peer may stay silent before it counts as lost
var (
	heartbeatEvery = time.Second
	lostAfter      = 3 * time.Second
)

// Group is a process group: this process's place in a job and the collectives among
// its ranks. Its methods must be called in the same order on every rank; they may be
// called from several goroutines (calls are serialised). A view made by WithTimeout
// shares the group.
type Group struct {
	*core
	timeout time.Duration // per call, this view's
}

type peer struct {
	Host      string `json:"host"`
	PID       int    `json:"pid"`
	WorldSize int    `json:"world_size"`
	Backend   string `json:"backend"`
	Torch     string `json:"torch"`
}

type core struct {
	cfg     Config
	mu      sync.Mutex     // serialises issuing collectives and store sequences
	root    unsafe.Pointer // the TCPStore / FileStore
	store   unsafe.Pointer // root under the prefix "blockllm" (c10d joins prefix and key with "/")
	pgSt    unsafe.Pointer // store under "blockllm/pg0" for the process group
	agentSt unsafe.Pointer // root under /worker/attempt_N (agent store only)
	pg      unsafe.Pointer
	peers   []peer

	hostsStore bool // this process hosts the TCPStore (rank 0 without agent store)
	agreeSeq   int
	failed     error // first failure; the group refuses collectives after it

	stopHB chan struct{}
	hbDone chan struct{}

	statsMu sync.Mutex
	stats   map[string]*OpStats

	closeOnce sync.Once
	closeErr  error
}

// OpStats counts one kind of collective issued by this rank.
type OpStats struct {
	Calls int64         // collectives issued
	Bytes int64         // payload bytes of this rank's tensors (the all-reduced bytes for AllReduce)
	Time  time.Duration // from issue to the end of its wait
}

// Init joins the job described by the environment (ConfigFromEnv): a single-process
// group when WORLD_SIZE is unset or 1.
func Init() (*Group, error) {
	cfg, err := ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	return New(cfg)
}

// New joins the job that cfg describes. With more than one rank it connects to (rank 0
// without an agent store: hosts) the store, waits until every rank has joined (naming
// the ranks that did not within InitTimeout), and builds the process group.
func New(cfg Config) (*Group, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &core{cfg: cfg, stats: map[string]*OpStats{}}
	g := &Group{core: c}
	if cfg.WorldSize == 1 && !cfg.SingleRankGroup {
		return g, nil
	}
	if err := torch.Init(); err != nil {
		return nil, err
	}
	gloo, nccl, err := cgo.DistFeatures()
	if err != nil {
		return nil, fmt.Errorf("dist: %v", err)
	}
	if cfg.Backend == Gloo && !gloo {
		return nil, errors.New("dist: this libtorch shim was built without Gloo (its headers were missing: on Debian install libgloo-dev, then run `make shim`)")
	}
	if cfg.Backend == NCCL && !nccl {
		return nil, errors.New("dist: this libtorch shim has no NCCL: it needs a CUDA libtorch and nccl.h when `make shim` runs")
	}
	if err := c.connect(); err != nil {
		c.release()
		return nil, err
	}
	if err := c.join(); err != nil {
		c.release()
		return nil, err
	}
	if err := c.newPG(); err != nil {
		c.release()
		return nil, err
	}
	c.stopHB = make(chan struct{})
	c.hbDone = make(chan struct{})
	go c.heartbeat()
	return g, nil
}

// Rank is this process's rank.
func (g *Group) Rank() int { return g.cfg.Rank }

// Size is the world size.
func (g *Group) Size() int { return g.cfg.WorldSize }

// LocalRank is this process's rank on its machine.
func (g *Group) LocalRank() int { return g.cfg.LocalRank }

// LocalSize is the number of processes on this machine.
func (g *Group) LocalSize() int { return g.cfg.LocalWorldSize }

// Backend is the process group's backend (Gloo or NCCL).
func (g *Group) Backend() string { return g.cfg.Backend }

// Config is the configuration the group was made with (defaults filled in).
func (g *Group) Config() Config { return g.cfg }

// IsMain reports rank 0: the process that logs, plots and writes checkpoints.
func (g *Group) IsMain() bool { return g.cfg.Rank == 0 }

// WithTimeout returns a view of g whose collectives use timeout d (<= 0: the group's).
func (g *Group) WithTimeout(d time.Duration) *Group { return &Group{core: g.core, timeout: d} }

func (g *Group) callTimeout() time.Duration {
	if g.timeout > 0 {
		return g.timeout
	}
	return g.cfg.Timeout
}

func (c *core) single() bool { return c.pg == nil }

// Stats returns a copy of the per-collective counters (keys: all_reduce, broadcast,
// all_gather, reduce_scatter, barrier).
func (g *Group) Stats() map[string]OpStats {
	g.statsMu.Lock()
	defer g.statsMu.Unlock()
	out := make(map[string]OpStats, len(g.stats))
	for k, v := range g.stats {
		out[k] = *v
	}
	return out
}

// ResetStats zeroes the counters.
func (g *Group) ResetStats() {
	g.statsMu.Lock()
	g.stats = map[string]*OpStats{}
	g.statsMu.Unlock()
}

func (c *core) count(op string, bytes int64, d time.Duration, issued bool) {
	c.statsMu.Lock()
	s := c.stats[op]
	if s == nil {
		s = &OpStats{}
		c.stats[op] = s
	}
	if issued {
		s.Calls++
		s.Bytes += bytes
	}
	s.Time += d
	c.statsMu.Unlock()
}

// ---- joining ---------------------------------------------------------------------------

func (c *core) where() string {
	if c.cfg.StoreFile != "" {
		return "the file store " + c.cfg.StoreFile
	}
	return fmt.Sprintf("%s=%s %s=%d", EnvMasterAddr, c.cfg.MasterAddr, EnvMasterPort, c.cfg.MasterPort)
}

func (c *core) connect() error {
	cfg := c.cfg
	if cfg.StoreFile != "" {
		s, err := cgo.StoreFile(cfg.StoreFile, cfg.WorldSize, cfg.InitTimeout)
		if err != nil {
			return fmt.Errorf("dist: rank %d cannot open the file store %s: %v", cfg.Rank, cfg.StoreFile, err)
		}
		c.root = s
	} else {
		ips, err := resolve(cfg.MasterAddr, cfg.InitTimeout)
		if err != nil {
			return err
		}
		if c.cfg.GlooInterface == "" && c.cfg.GlooHost == "" {
			c.cfg.GlooHost = glooHost(ips, cfg.MasterPort)
		}
		server := cfg.Rank == 0 && !cfg.UseAgentStore
		s, _, err := cgo.StoreTCP(cfg.MasterAddr, cfg.MasterPort, server, cfg.InitTimeout)
		if err != nil {
			return c.storeError(err, server, ips)
		}
		c.root = s
		c.hostsStore = server
	}
	base := c.root
	if cfg.UseAgentStore {
		// as torch.distributed's env:// rendezvous does under torchelastic
		s, err := cgo.StorePrefix(c.root, fmt.Sprintf("/worker/attempt_%d", cfg.RestartCount))
		if err != nil {
			return fmt.Errorf("dist: %v", err)
		}
		c.agentSt = s
		base = s
	}
	s, err := cgo.StorePrefix(base, "blockllm")
	if err != nil {
		return fmt.Errorf("dist: %v", err)
	}
	c.store = s
	pgs, err := cgo.StorePrefix(base, "blockllm/pg0")
	if err != nil {
		return fmt.Errorf("dist: %v", err)
	}
	c.pgSt = pgs
	return nil
}

func (c *core) storeError(err error, server bool, ips []net.IP) error {
	cfg := c.cfg
	msg := err.Error()
	if server && (strings.Contains(msg, "Address already in use") || strings.Contains(msg, "errno: 98")) {
		return fmt.Errorf("dist: rank 0 cannot host the store on %s=%d: the port is already in use (another job on this machine? choose a free port): %s",
			EnvMasterPort, cfg.MasterPort, msg)
	}
	who := "rank 0"
	if cfg.UseAgentStore {
		who = "the launcher's store"
	}
	hint := fmt.Sprintf("is %s running, with the same %s and %s?", who, EnvMasterAddr, EnvMasterPort)
	if server && !isLocal(ips) {
		hint = fmt.Sprintf("%s=%s is not an address of this machine, but rank 0 hosts the store", EnvMasterAddr, cfg.MasterAddr)
	}
	return fmt.Errorf("dist: rank %d cannot reach the store at %s within %v (%s): %s", cfg.Rank, c.where(), cfg.InitTimeout, hint, msg)
}

func (c *core) join() error {
	cfg := c.cfg
	host, _ := os.Hostname()
	me := peer{Host: host, PID: os.Getpid(), WorldSize: cfg.WorldSize, Backend: cfg.Backend, Torch: torch.Version()}
	b, _ := json.Marshal(me)
	if err := cgo.StoreSet(c.store, "join/"+strconv.Itoa(cfg.Rank), b); err != nil {
		return fmt.Errorf("dist: rank %d cannot write to the store at %s: %v", cfg.Rank, c.where(), err)
	}
	deadline := time.Now().Add(cfg.InitTimeout)
	c.peers = make([]peer, cfg.WorldSize)
	for r := 0; r < cfg.WorldSize; r++ {
		left := time.Until(deadline)
		if left < time.Millisecond {
			left = time.Millisecond
		}
		v, err := cgo.StoreGet(c.store, "join/"+strconv.Itoa(r), left)
		if err != nil {
			var missing []int
			for q := 0; q < cfg.WorldSize; q++ {
				if ok, e := cgo.StoreCheck(c.store, "join/"+strconv.Itoa(q)); e == nil && !ok {
					missing = append(missing, q)
				}
			}
			if len(missing) == 0 {
				return fmt.Errorf("dist: rank %d: waiting for rank %d to join failed: %v", cfg.Rank, r, err)
			}
			return fmt.Errorf("dist: rank %d: %s %s did not join within %v through %s (were they started, with the same %s and %s=%d?)",
				cfg.Rank, plural("rank", len(missing)), joinInts(missing), cfg.InitTimeout, c.where(), EnvMasterPort, EnvWorldSize, cfg.WorldSize)
		}
		var p peer
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("dist: rank %d: rank %d's join record %q is not ours (another program on %s?)", cfg.Rank, r, v, c.where())
		}
		if p.WorldSize != cfg.WorldSize {
			return fmt.Errorf("dist: rank %d has %s=%d but rank %d (pid %d on %s) has %d", cfg.Rank, EnvWorldSize, cfg.WorldSize, r, p.PID, p.Host, p.WorldSize)
		}
		if p.Backend != cfg.Backend {
			return fmt.Errorf("dist: rank %d uses backend %s but rank %d (pid %d on %s) uses %s", cfg.Rank, cfg.Backend, r, p.PID, p.Host, p.Backend)
		}
		c.peers[r] = p
	}
	return nil
}

func (c *core) newPG() error {
	cfg := c.cfg
	backend := cgo.BackendGloo
	if cfg.Backend == NCCL {
		backend = cgo.BackendNCCL
	}
	pg, err := cgo.PGNew(backend, c.pgSt, cfg.Rank, cfg.WorldSize, cfg.Timeout, cfg.GlooInterface, cfg.GlooHost, cfg.LocalRank)
	if err != nil {
		where := ""
		if cfg.Backend == Gloo {
			switch {
			case cfg.GlooInterface != "":
				where = fmt.Sprintf(" on %s=%s", EnvGlooSocketIfname, cfg.GlooInterface)
			case cfg.GlooHost != "":
				where = " on " + cfg.GlooHost
			}
		}
		return fmt.Errorf("dist: rank %d cannot build the %s process group%s: %v", cfg.Rank, cfg.Backend, where, err)
	}
	c.pg = pg
	return nil
}

func plural(w string, n int) string {
	if n == 1 {
		return w
	}
	return w + "s"
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// ---- liveness ----------------------------------------------------------------------------

func hbKey(r int) string { return "alive/" + strconv.Itoa(r) }

// heartbeat bumps this rank's counter in the store every heartbeatEvery, so that after a
// failed collective the survivors can tell which peers stopped.
func (c *core) heartbeat() {
	defer close(c.hbDone)
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	key := hbKey(c.cfg.Rank)
	for {
		if _, err := cgo.StoreAdd(c.store, key, 1); err != nil {
			return // the store is gone; diagnose() says so
		}
		select {
		case <-c.stopHB:
			return
		case <-t.C:
		}
	}
}

func (c *core) stopHeartbeat() {
	if c.stopHB != nil {
		select {
		case <-c.stopHB:
		default:
			close(c.stopHB)
		}
		<-c.hbDone
	}
}

// lostPeers reads every other rank's heartbeat twice, lostAfter apart; those that did not
// move are lost. storeErr is set when the store itself cannot be read.
func (c *core) lostPeers() (lost []int, storeErr error) {
	type result struct {
		lost []int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		read := func() ([]int64, error) {
			v := make([]int64, c.cfg.WorldSize)
			for r := range v {
				if r == c.cfg.Rank {
					continue
				}
				n, err := cgo.StoreAdd(c.store, hbKey(r), 0)
				if err != nil {
					return nil, err
				}
				v[r] = n
			}
			return v, nil
		}
		before, err := read()
		if err != nil {
			done <- result{err: err}
			return
		}
		time.Sleep(lostAfter)
		after, err := read()
		if err != nil {
			done <- result{err: err}
			return
		}
		var l []int
		for r := range after {
			if r != c.cfg.Rank && after[r] == before[r] {
				l = append(l, r)
			}
		}
		done <- result{lost: l}
	}()
	select {
	case r := <-done:
		return r.lost, r.err
	case <-time.After(lostAfter + 5*time.Second):
		return nil, errors.New("the store did not answer")
	}
}

// Error is a failed collective or agreement check.
type Error struct {
	Op        string // all_reduce, broadcast, all_gather, reduce_scatter, barrier, agree
	Rank      int    // the rank reporting it
	Lost      []int  // peers that stopped heart-beating: dead, killed or cut off
	StoreGone bool   // the store could not be read while diagnosing
	TimedOut  bool
	Detail    string // the backend's message
	peers     []peer
	storeBy   string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dist: rank %d: %s failed", e.Rank, e.Op)
	switch {
	case len(e.Lost) > 0:
		var names []string
		for _, r := range e.Lost {
			n := "rank " + strconv.Itoa(r)
			if r < len(e.peers) && e.peers[r].PID != 0 {
				n += fmt.Sprintf(" (pid %d on %s)", e.peers[r].PID, e.peers[r].Host)
			}
			names = append(names, n)
		}
		fmt.Fprintf(&b, ": lost peer %s: no sign of life for %v", strings.Join(names, ", "), lostAfter)
	case e.StoreGone:
		fmt.Fprintf(&b, ": lost the store (%s): its host is gone", e.storeBy)
	case e.TimedOut:
		b.WriteString(": no peer is lost, so a rank is alive but did not enter this collective (are all ranks running the same steps?)")
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// fail records the first failure and turns it into an *Error naming lost peers.
func (c *core) fail(op string, err error) error {
	detail := strings.TrimPrefix(err.Error(), op+": ") // the shim names the op too
	e := &Error{Op: op, Rank: c.cfg.Rank, Detail: detail, peers: c.peers,
		TimedOut: strings.Contains(detail, "timed out")}
	switch {
	case c.hostsStore:
		e.storeBy = "hosted by this rank"
	case c.cfg.UseAgentStore:
		e.storeBy = "hosted by the launcher at " + c.where()
	case c.cfg.StoreFile != "":
		e.storeBy = c.where()
	default:
		e.storeBy = "hosted by rank 0 at " + c.where()
	}
	c.mu.Lock()
	first, _ := c.failed.(*Error)
	c.mu.Unlock()
	if first != nil {
		// the diagnosis of the group's first failure holds for the later ones
		e.Lost, e.StoreGone = first.Lost, first.StoreGone
	} else if c.store != nil && c.cfg.WorldSize > 1 {
		lost, serr := c.lostPeers()
		e.Lost = lost
		if serr != nil {
			e.StoreGone = true
			if !c.hostsStore && !c.cfg.UseAgentStore && c.cfg.StoreFile == "" && c.cfg.Rank != 0 {
				e.Lost = []int{0} // rank 0 hosted the store
			}
		}
	}
	c.mu.Lock()
	if c.failed == nil {
		c.failed = e
	}
	c.mu.Unlock()
	return e
}

// Err is the group's first failure (nil while it works).
func (g *Group) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.failed
}

// ---- closing --------------------------------------------------------------------------

// Close leaves the job: after a last rendezvous (so that rank 0 keeps hosting the store
// until every rank is done with it) it frees the process group and the store. A group
// whose collectives failed is left to the process's exit instead (its threads may wait on
// a dead peer). Closing twice is a no-op.
func (g *Group) Close() error {
	g.closeOnce.Do(func() { g.closeErr = g.close() })
	return g.closeErr
}

func (c *core) close() error {
	if c.single() && c.root == nil {
		return nil
	}
	c.stopHeartbeat()
	c.mu.Lock()
	failed := c.failed
	c.mu.Unlock()
	var errs []error
	if failed == nil && c.store != nil {
		if n, err := cgo.StoreAdd(c.store, "closed", 1); err != nil {
			errs = append(errs, fmt.Errorf("dist: rank %d: close: %v", c.cfg.Rank, err))
		} else if c.hostsStore {
			// keep serving the store until every rank has said goodbye
			deadline := time.Now().Add(min(c.cfg.Timeout, time.Minute))
			for n < int64(c.cfg.WorldSize) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				if n, err = cgo.StoreAdd(c.store, "closed", 0); err != nil {
					break
				}
			}
		}
	}
	if c.pg != nil {
		if _, err := cgo.PGFree(c.pg); err != nil {
			errs = append(errs, fmt.Errorf("dist: rank %d: close: %v", c.cfg.Rank, err))
		}
		c.pg = nil
	}
	c.release()
	return errors.Join(errs...)
}

// release frees the stores (the process group holds its own reference).
func (c *core) release() {
	if c.pg != nil {
		cgo.PGFree(c.pg)
		c.pg = nil
	}
	for _, s := range []*unsafe.Pointer{&c.pgSt, &c.store, &c.agentSt, &c.root} {
		if *s != nil {
			cgo.StoreFree(*s)
			*s = nil
		}
	}
}

// ---- agreement -------------------------------------------------------------------------

// Agree checks that every rank passes the same value for what (say, the flags that must
// match: "model=llama-60m method=blockllm sparsity=0.9") and returns an error naming each
// rank that differs from rank 0 and how. Values made of space-separated key=value fields
// are compared field by field. Every rank must call it, in the same order; every rank
// gets the same answer.
func (g *Group) Agree(what, value string) error {
	if g.single() {
		return nil
	}
	g.mu.Lock()
	seq := g.agreeSeq
	g.agreeSeq++
	g.mu.Unlock()
	prefix := fmt.Sprintf("agree/%d/", seq)
	if err := cgo.StoreSet(g.store, prefix+strconv.Itoa(g.cfg.Rank), []byte(value)); err != nil {
		return g.fail("agree", err)
	}
	vals := make([]string, g.cfg.WorldSize)
	for r := range vals {
		v, err := cgo.StoreGet(g.store, prefix+strconv.Itoa(r), g.callTimeout())
		if err != nil {
			return g.fail("agree", fmt.Errorf("waiting for rank %d's %s: %v", r, what, err))
		}
		vals[r] = string(v)
	}
	var diffs []string
	for r := 1; r < len(vals); r++ {
		if vals[r] != vals[0] {
			d := describeDiff(vals[r], vals[0])
			diffs = append(diffs, fmt.Sprintf("rank %d has %s, rank 0 has %s", r, d[0], d[1]))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("dist: ranks disagree on %s: %s", what, strings.Join(diffs, "; "))
}

// describeDiff returns the differing parts of two values: the differing key=value fields
// when both are made of them, else both values quoted (shortened).
func describeDiff(a, b string) [2]string {
	fa, oka := fields(a)
	fb, okb := fields(b)
	if oka && okb {
		keys := map[string]bool{}
		for k := range fa {
			keys[k] = true
		}
		for k := range fb {
			keys[k] = true
		}
		var ks []string
		for k := range keys {
			if fa[k] != fb[k] {
				ks = append(ks, k)
			}
		}
		sort.Strings(ks)
		show := func(f map[string]string) string {
			var p []string
			for _, k := range ks {
				if v, ok := f[k]; ok {
					p = append(p, k+"="+v)
				} else {
					p = append(p, "no "+k)
				}
			}
			return strings.Join(p, " ")
		}
		return [2]string{show(fa), show(fb)}
	}
	short := func(s string) string {
		if len(s) > 200 {
			s = s[:200] + "..."
		}
		return strconv.Quote(s)
	}
	return [2]string{short(a), short(b)}
}

func fields(s string) (map[string]string, bool) {
	m := map[string]string{}
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, false
		}
		m[k] = v
	}
	return m, len(m) > 0
}
