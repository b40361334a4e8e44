package dist

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/blockllm/blockllm-go/cgo"
	"github.com/blockllm/blockllm-go/torch"
)

// storeGet reads a key under the group's "blockllm" prefix.
func storeGet(g *Group, key string, d time.Duration) (string, error) {
	v, err := cgo.StoreGet(g.store, key, d)
	return string(v), err
}

// runWorker runs one scenario in a re-executed test binary and returns its exit code:
// 0 when every check passed, 1 when one failed (printed as "FAIL ..." on stderr), 2
// when the group could not be made, 3 when a collective failed as the scenario expects.
func runWorker(scenario string) int {
	torch.SetNumThreads(1)
	// a quicker liveness check than the default 1s/3s, to keep the tests short
	heartbeatEvery, lostAfter = 200*time.Millisecond, time.Second
	var g *Group
	var err error
	if f := os.Getenv("BLOCKLLM_DIST_TEST_STOREFILE"); f != "" {
		cfg, cerr := ConfigFromEnv()
		if cerr != nil {
			fmt.Fprintln(os.Stderr, cerr)
			return 2
		}
		cfg.StoreFile, cfg.GlooHost, cfg.MasterAddr = f, "127.0.0.1", ""
		g, err = New(cfg)
	} else {
		g, err = Init()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	switch scenario {
	case "collectives":
		return report(g, collectives(g))
	case "filestore", "agent":
		return report(g, smallCollectives(g, scenario))
	case "kill":
		return lostPeer(g)
	case "timeout":
		return timeoutScenario(g)
	}
	fmt.Fprintln(os.Stderr, "unknown scenario", scenario)
	return 2
}

func report(g *Group, fails []string) int {
	for _, f := range fails {
		fmt.Fprintf(os.Stderr, "FAIL rank %d: %s\n", g.Rank(), f)
	}
	if err := g.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL rank %d: close: %v\n", g.Rank(), err)
		return 1
	}
	if len(fails) > 0 {
		return 1
	}
	fmt.Println("ok")
	return 0
}

type checker struct {
	fails []string
}

func (c *checker) errf(format string, a ...any) { c.fails = append(c.fails, fmt.Sprintf(format, a...)) }

func (c *checker) noErr(what string, err error) bool {
	if err != nil {
		c.errf("%s: %v", what, err)
		return false
	}
	return true
}

func (c *checker) eq(what string, got, want []float64) {
	if !reflect.DeepEqual(got, want) {
		c.errf("%s: got %v, want %v", what, got, want)
	}
}

// vals returns f(r) for every rank r.
func perRank(n int, f func(r int) float64) []float64 {
	v := make([]float64, n)
	for r := range v {
		v[r] = f(r)
	}
	return v
}

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

// collectives runs every collective with values that are exact in float32 and bfloat16
// and checks the results exactly.
func collectives(g *Group) []string {
	c := &checker{}
	n, me := g.Size(), g.Rank()
	rf := float64(me)
	s := torch.NewScope()
	defer s.Close()

	// all-reduce sum, avg, max, min on float32 [2, 3]: rank r holds (r+1) * (1..6)
	base := []float64{1, 2, 3, 4, 5, 6}
	scaled := func(k float64) []float64 {
		v := make([]float64, len(base))
		for i, b := range base {
			v[i] = k * b
		}
		return v
	}
	ks := perRank(n, func(r int) float64 { return float64(r + 1) })
	for _, tc := range []struct {
		op   ReduceOp
		want float64
	}{{Sum, sum(ks)}, {Avg, sum(ks) / float64(n)}, {Max, float64(n)}, {Min, 1}} {
		x := s.FromFloat64(scaled(rf+1), 2, 3).To(torch.F32)
		if c.noErr("all_reduce "+tc.op.String(), g.AllReduce(x, tc.op)) {
			c.eq("all_reduce "+tc.op.String(), x.Float64s(), scaled(tc.want))
		}
	}
	// bfloat16 (staged through float32 for Gloo), int64 sum, a transposed (non-contiguous) view
	xb := s.FromFloat64(scaled(rf+1), 6).To(torch.BF16)
	if c.noErr("all_reduce bf16 avg", g.AllReduce(xb, Avg)) {
		c.eq("all_reduce bf16 avg", xb.To(torch.F64).Float64s(), scaled(sum(ks)/float64(n)))
	}
	xi := s.FromInt64([]int64{int64(me), 10 * int64(me)}, 2)
	if c.noErr("all_reduce i64 sum", g.AllReduce(xi, Sum)) {
		tot := int64(n * (n - 1) / 2)
		if got := xi.Int64s(); !reflect.DeepEqual(got, []int64{tot, 10 * tot}) {
			c.errf("all_reduce i64 sum: got %v", got)
		}
	}
	if err := g.AllReduce(xi, Avg); err == nil || !strings.Contains(err.Error(), "floating-point") {
		c.errf("all_reduce avg of int64: want a floating-point error, got %v", err)
	}
	xt := s.FromFloat64(scaled(rf+1), 2, 3).To(torch.F32).Transpose(0, 1)
	if c.noErr("all_reduce transposed", g.AllReduce(xt, Sum)) {
		c.eq("all_reduce transposed", xt.Contiguous().Float64s(), s.FromFloat64(scaled(sum(ks)), 2, 3).Transpose(0, 1).Contiguous().Float64s())
	}
	// a bucket of two tensors of different shapes, issued asynchronously
	b1 := s.FromFloat64([]float64{rf, 1}, 2).To(torch.F32)
	b2 := s.FromFloat64(scaled(rf+1), 3, 2).To(torch.F32)
	if w, err := g.AllReduceAsync([]*torch.Tensor{b1, b2}, Avg); c.noErr("all_reduce bucket", err) {
		if c.noErr("all_reduce bucket wait", w.Wait()) {
			c.eq("bucket[0]", b1.Float64s(), []float64{float64(n-1) / 2, 1})
			c.eq("bucket[1]", b2.Float64s(), scaled(sum(ks)/float64(n)))
		}
	}

	// broadcast from the last rank: float32, bfloat16 (moved as 16-bit words), int64
	root := n - 1
	for _, dt := range []torch.DType{torch.F32, torch.BF16, torch.I64} {
		x := s.FromFloat64([]float64{rf, rf + 0.5, -rf}, 3).To(dt)
		want := s.FromFloat64([]float64{float64(root), float64(root) + 0.5, -float64(root)}, 3).To(dt).To(torch.F64).Float64s()
		if c.noErr("broadcast "+dt.String(), g.Broadcast(x, root)) {
			c.eq("broadcast "+dt.String(), x.To(torch.F64).Float64s(), want)
		}
	}

	// all-gather into a list and into one flat tensor
	in := s.FromFloat64([]float64{rf, rf * 10, rf * 100}, 3).To(torch.F32)
	outs := make([]*torch.Tensor, n)
	for r := range outs {
		outs[r] = s.Zeros([]int64{1, 3}, torch.F32, torch.CPU) // shaped differently from in
	}
	if c.noErr("all_gather", g.AllGather(in, outs)) {
		for r, o := range outs {
			c.eq(fmt.Sprintf("all_gather[%d]", r), o.Float64s(), []float64{float64(r), float64(r) * 10, float64(r) * 100})
		}
	}
	flat := s.Zeros([]int64{int64(n), 3}, torch.F32, torch.CPU)
	if c.noErr("all_gather flat", g.AllGatherInto(in, flat)) {
		var want []float64
		for r := 0; r < n; r++ {
			want = append(want, float64(r), float64(r)*10, float64(r)*100)
		}
		c.eq("all_gather flat", flat.Float64s(), want)
	}
	inb := s.FromFloat64([]float64{rf + 0.25}, 1).To(torch.BF16)
	flatb := s.Zeros([]int64{int64(n)}, torch.BF16, torch.CPU)
	if c.noErr("all_gather bf16", g.AllGatherInto(inb, flatb)) {
		c.eq("all_gather bf16", flatb.To(torch.F64).Float64s(), perRank(n, func(r int) float64 { return float64(r) + 0.25 }))
	}

	// reduce-scatter: rank r holds arange(4n) + 100 r; out gets chunk r of the sum (avg)
	for _, op := range []ReduceOp{Sum, Avg} {
		vals := make([]float64, 4*n)
		for i := range vals {
			vals[i] = float64(i) + 100*rf
		}
		rin := s.FromFloat64(vals, int64(4*n)).To(torch.F32)
		rout := s.Zeros([]int64{2, 2}, torch.F32, torch.CPU)
		if c.noErr("reduce_scatter "+op.String(), g.ReduceScatter(rin, rout, op)) {
			want := make([]float64, 4)
			for i := range want {
				want[i] = float64(n)*float64(4*me+i) + 100*sum(perRank(n, func(r int) float64 { return float64(r) }))
				if op == Avg {
					want[i] /= float64(n)
				}
			}
			c.eq("reduce_scatter "+op.String(), rout.Float64s(), want)
			c.eq("reduce_scatter input untouched", rin.Float64s(), vals)
		}
	}

	c.noErr("barrier", g.Barrier())
	if got, err := g.AllReduceFloat64s([]float64{rf, 1}, Sum); c.noErr("AllReduceFloat64s", err) {
		c.eq("AllReduceFloat64s", got, []float64{sum(perRank(n, func(r int) float64 { return float64(r) })), float64(n)})
	}

	// agreement: equal values pass; a rank-dependent field is reported by rank and key
	c.noErr("agree equal", g.Agree("flags", "model=llama-20m method=blockllm sparsity=0.9"))
	method := "blockllm"
	if me == 1 {
		method = "adamw"
	}
	err := g.Agree("flags", "model=llama-20m method="+method+" sparsity=0.9")
	if err == nil || !strings.Contains(err.Error(), "rank 1 has method=adamw, rank 0 has method=blockllm") ||
		strings.Contains(err.Error(), "sparsity") {
		c.errf("agree: want rank 1's method named, got %v", err)
	}

	st := g.Stats()
	if ar := st["all_reduce"]; ar.Calls != 9 || ar.Bytes <= 0 {
		c.errf("stats: all_reduce %+v, want 9 calls with bytes", ar)
	}
	if g.Err() != nil {
		c.errf("group failed: %v", g.Err())
	}
	b, _ := json.Marshal(map[string]any{"rank": me, "rs_native": g.ReduceScatterNative()})
	fmt.Println("result " + string(b))
	return c.fails
}

// smallCollectives checks one all-reduce and one broadcast (for other stores), and in
// the agent scenario reads a key the Python store host wrote.
func smallCollectives(g *Group, scenario string) []string {
	c := &checker{}
	s := torch.NewScope()
	defer s.Close()
	x := s.FromFloat64([]float64{float64(g.Rank() + 1)}, 1).To(torch.F32)
	if c.noErr("all_reduce", g.AllReduce(x, Sum)) {
		c.eq("all_reduce", x.Float64s(), []float64{float64(g.Size() * (g.Size() + 1) / 2)})
	}
	y := s.FromFloat64([]float64{float64(g.Rank())}, 1).To(torch.F32)
	if c.noErr("broadcast", g.Broadcast(y, 0)) {
		c.eq("broadcast", y.Float64s(), []float64{0})
	}
	if scenario == "agent" {
		v, err := storeGet(g, "from-python", 20*time.Second)
		if c.noErr("read the key python set", err) {
			fmt.Println("python-said " + v)
		}
	}
	c.noErr("barrier", g.Barrier())
	return c.fails
}

// lostPeer: rank 1 says it is ready and sleeps until the test kills it; rank 0 all-reduces
// until that fails, and prints the error.
func lostPeer(g *Group) int {
	s := torch.NewScope()
	defer s.Close()
	if err := g.Barrier(); err != nil {
		fmt.Fprintln(os.Stderr, "barrier:", err)
		return 1
	}
	if g.Rank() == 1 {
		fmt.Println("ready")
		time.Sleep(time.Minute)
		return 1
	}
	x := s.Ones([]int64{1000}, torch.F32, torch.CPU)
	for i := 0; ; i++ {
		if err := g.AllReduce(x, Sum); err != nil {
			fmt.Println("error " + err.Error())
			t0 := time.Now()
			g.Close()
			fmt.Printf("closed in %v\n", time.Since(t0))
			return 3
		}
	}
}

// timeoutScenario: rank 1 stays alive but skips the collective; rank 0's all-reduce with
// a 1s timeout fails, naming no lost peer.
func timeoutScenario(g *Group) int {
	s := torch.NewScope()
	defer s.Close()
	if err := g.Barrier(); err != nil {
		fmt.Fprintln(os.Stderr, "barrier:", err)
		return 1
	}
	if g.Rank() == 1 {
		fmt.Println("ready")
		time.Sleep(time.Minute)
		return 1
	}
	x := s.Ones([]int64{10}, torch.F32, torch.CPU)
	t0 := time.Now()
	err := g.WithTimeout(time.Second).AllReduce(x, Sum)
	fmt.Printf("failed after %v\n", time.Since(t0).Round(time.Millisecond))
	if err == nil {
		fmt.Println("error none")
		return 1
	}
	fmt.Println("error " + err.Error())
	// the group refuses further collectives, and closes without waiting for rank 1
	if err2 := g.AllReduce(x, Sum); err2 == nil || !strings.Contains(err2.Error(), "failed earlier") {
		fmt.Println("second error", err2)
		return 1
	}
	t1 := time.Now()
	g.Close()
	fmt.Printf("closed in %v\n", time.Since(t1))
	return 3
}
