package dist

import (
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"github.com/blockllm/blockllm-go/cgo"
	"github.com/blockllm/blockllm-go/torch"
)

// ReduceOp is the reduction of AllReduce and ReduceScatter.
type ReduceOp int

// Reductions. Avg is the sum divided by the world size (Gloo has no average of its own:
// the shim sums, then divides); it needs floating-point tensors.
const (
	Sum ReduceOp = iota
	Avg
	Max
	Min
)

func (o ReduceOp) String() string {
	switch o {
	case Sum:
		return "sum"
	case Avg:
		return "avg"
	case Max:
		return "max"
	case Min:
		return "min"
	}
	return fmt.Sprintf("ReduceOp(%d)", int(o))
}

func (o ReduceOp) code() int {
	switch o {
	case Avg:
		return cgo.ReduceAvg
	case Max:
		return cgo.ReduceMax
	case Min:
		return cgo.ReduceMin
	}
	return cgo.ReduceSum
}

// Work is a collective in flight (from AllReduceAsync). Wait must be called once it is
// needed (and at the latest before the tensors are used or freed); until then the
// tensors must stay alive and untouched.
type Work struct {
	g       *Group
	h       unsafe.Pointer
	op      string
	start   time.Time
	timeout time.Duration
	keep    []*torch.Tensor
	done    bool
	err     error
}

// Wait waits for the collective (up to the timeout it was issued with) and finishes it:
// results are in the tensors when it returns nil. Waiting again returns the same result.
func (w *Work) Wait() error {
	if w.done {
		return w.err
	}
	w.done = true
	if w.h == nil {
		return nil
	}
	err := cgo.WorkWait(w.h, w.timeout)
	cgo.WorkFree(w.h)
	w.h = nil
	runtime.KeepAlive(w.keep)
	w.keep = nil
	w.g.count(w.op, 0, time.Since(w.start), false)
	if err != nil {
		w.err = w.g.fail(w.op, err)
	}
	return w.err
}

var doneWork = &Work{done: true}

func handles(op string, ts []*torch.Tensor) ([]unsafe.Pointer, int64, error) {
	hs := make([]unsafe.Pointer, len(ts))
	var bytes int64
	for i, t := range ts {
		if !t.Valid() {
			return nil, 0, fmt.Errorf("dist: %s: tensor %d is nil or freed", op, i)
		}
		hs[i] = t.Handle()
		bytes += t.NBytes()
	}
	return hs, bytes, nil
}

// issue starts a collective under the group's lock and wraps it.
func (g *Group) issue(op string, bytes int64, keep []*torch.Tensor, start func(timeout time.Duration) (unsafe.Pointer, error)) (*Work, error) {
	g.mu.Lock()
	if g.failed != nil {
		err := g.failed
		g.mu.Unlock()
		return nil, fmt.Errorf("dist: rank %d: %s: the group failed earlier: %w", g.cfg.Rank, op, err)
	}
	t := g.callTimeout()
	t0 := time.Now()
	h, err := start(t)
	g.mu.Unlock()
	if err != nil {
		return nil, g.fail(op, err)
	}
	g.count(op, bytes, 0, true)
	return &Work{g: g, h: h, op: op, start: t0, timeout: t, keep: keep}, nil
}

func checkOp(op string, o ReduceOp, ts ...*torch.Tensor) error {
	if o < Sum || o > Min {
		return fmt.Errorf("dist: %s: unknown reduce op %d", op, int(o))
	}
	if o == Avg {
		for _, t := range ts {
			if !t.DType().IsFloat() {
				return fmt.Errorf("dist: %s: an average needs floating-point tensors, got %s", op, t.DType())
			}
		}
	}
	return nil
}

// AllReduce reduces t across ranks in place: every rank ends with the sum (average,
// maximum, minimum) of all ranks' t.
func (g *Group) AllReduce(t *torch.Tensor, op ReduceOp) error {
	return g.AllReduceBucket([]*torch.Tensor{t}, op)
}

// AllReduceBucket all-reduces several tensors of one dtype and device as one collective
// (flattened into one buffer, as DDP's buckets are).
func (g *Group) AllReduceBucket(ts []*torch.Tensor, op ReduceOp) error {
	w, err := g.AllReduceAsync(ts, op)
	if err != nil {
		return err
	}
	return w.Wait()
}

// AllReduceAsync issues AllReduceBucket and returns at once; Work.Wait finishes it. The
// process group runs it on its own threads meanwhile (to overlap communication with the
// rest of backward).
func (g *Group) AllReduceAsync(ts []*torch.Tensor, op ReduceOp) (*Work, error) {
	hs, bytes, err := handles("all_reduce", ts)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("dist: all_reduce: no tensors")
	}
	if err := checkOp("all_reduce", op, ts...); err != nil {
		return nil, err
	}
	if g.single() {
		return doneWork, nil
	}
	return g.issue("all_reduce", bytes, ts, func(t time.Duration) (unsafe.Pointer, error) {
		return cgo.PGAllReduce(g.pg, hs, op.code(), t)
	})
}

// Broadcast copies root's t into every other rank's t.
func (g *Group) Broadcast(t *torch.Tensor, root int) error {
	hs, bytes, err := handles("broadcast", []*torch.Tensor{t})
	if err != nil {
		return err
	}
	if root < 0 || root >= g.cfg.WorldSize {
		return fmt.Errorf("dist: broadcast: root rank %d is outside world size %d", root, g.cfg.WorldSize)
	}
	if g.single() {
		return nil
	}
	w, err := g.issue("broadcast", bytes, []*torch.Tensor{t}, func(d time.Duration) (unsafe.Pointer, error) {
		return cgo.PGBroadcast(g.pg, hs[0], root, d)
	})
	if err != nil {
		return err
	}
	return w.Wait()
}

// AllGather gathers every rank's in into outs (one tensor per rank, in rank order, each
// with in's number of elements and dtype).
func (g *Group) AllGather(in *torch.Tensor, outs []*torch.Tensor) error {
	hin, bytes, err := handles("all_gather", []*torch.Tensor{in})
	if err != nil {
		return err
	}
	hs, _, err := handles("all_gather", outs)
	if err != nil {
		return err
	}
	if len(outs) != g.cfg.WorldSize {
		return fmt.Errorf("dist: all_gather: %d output tensors for world size %d", len(outs), g.cfg.WorldSize)
	}
	if g.single() {
		return copyInto("all_gather", outs[0], in)
	}
	w, err := g.issue("all_gather", bytes, append([]*torch.Tensor{in}, outs...), func(d time.Duration) (unsafe.Pointer, error) {
		return cgo.PGAllGather(g.pg, hin[0], hs, d)
	})
	if err != nil {
		return err
	}
	return w.Wait()
}

// AllGatherInto gathers every rank's in into flat, a tensor of world size times in's
// number of elements: rank r's elements land at [r*n, (r+1)*n) of flat's flattened
// order (ZeRO's all-gather of updated shards).
func (g *Group) AllGatherInto(in, flat *torch.Tensor) error {
	hs, bytes, err := handles("all_gather", []*torch.Tensor{in, flat})
	if err != nil {
		return err
	}
	if flat.Numel() != in.Numel()*int64(g.cfg.WorldSize) {
		return fmt.Errorf("dist: all_gather: the output has %d elements, want %d (world size %d x %d)",
			flat.Numel(), in.Numel()*int64(g.cfg.WorldSize), g.cfg.WorldSize, in.Numel())
	}
	if g.single() {
		return copyInto("all_gather", flat, in)
	}
	w, err := g.issue("all_gather", bytes-flat.NBytes(), []*torch.Tensor{in, flat}, func(d time.Duration) (unsafe.Pointer, error) {
		return cgo.PGAllGatherFlat(g.pg, hs[0], hs[1], d)
	})
	if err != nil {
		return err
	}
	return w.Wait()
}

// ReduceScatter reduces in (world size times out's number of elements) across ranks and
// leaves in out this rank's chunk: elements [rank*n, (rank+1)*n) of the reduced,
// flattened in. in is not modified. Gloo before libtorch 2.x has no reduce-scatter of its
// own: the shim then all-reduces a copy of in and keeps the chunk (ReduceScatterNative
// says which ran).
func (g *Group) ReduceScatter(in, out *torch.Tensor, op ReduceOp) error {
	hs, _, err := handles("reduce_scatter", []*torch.Tensor{in, out})
	if err != nil {
		return err
	}
	if err := checkOp("reduce_scatter", op, in); err != nil {
		return err
	}
	if in.Numel() != out.Numel()*int64(g.cfg.WorldSize) {
		return fmt.Errorf("dist: reduce_scatter: the input has %d elements, want %d (world size %d x %d)",
			in.Numel(), out.Numel()*int64(g.cfg.WorldSize), g.cfg.WorldSize, out.Numel())
	}
	if g.single() {
		return copyInto("reduce_scatter", out, in)
	}
	w, err := g.issue("reduce_scatter", in.NBytes(), []*torch.Tensor{in, out}, func(d time.Duration) (unsafe.Pointer, error) {
		return cgo.PGReduceScatter(g.pg, hs[0], hs[1], op.code(), d)
	})
	if err != nil {
		return err
	}
	return w.Wait()
}

// ReduceScatterNative reports whether the last ReduceScatter ran as the backend's own
// collective (false: all-reduce and slice, or none ran yet).
func (g *Group) ReduceScatterNative() bool {
	if g.single() {
		return false
	}
	rs, _, err := cgo.PGInfo(g.pg)
	return err == nil && rs == 1
}

// Barrier returns once every rank has called it.
func (g *Group) Barrier() error {
	if g.single() {
		return nil
	}
	w, err := g.issue("barrier", 0, nil, func(d time.Duration) (unsafe.Pointer, error) {
		return cgo.PGBarrier(g.pg, d)
	})
	if err != nil {
		return err
	}
	return w.Wait()
}

// AllReduceFloat64s reduces a few numbers across ranks (a loss, metric counts) and
// returns the result; the tensor lives on the group's device.
func (g *Group) AllReduceFloat64s(v []float64, op ReduceOp) ([]float64, error) {
	if g.single() || len(v) == 0 {
		return append([]float64(nil), v...), nil
	}
	var out []float64
	var cerr error
	err := torch.WithScope(func(s *torch.Scope) error {
		t := s.FromFloat64(v, int64(len(v)))
		if g.cfg.Backend == NCCL {
			t = t.ToDevice(torch.F64, torch.CUDA(g.cfg.LocalRank))
		}
		if cerr = g.AllReduce(t, op); cerr != nil {
			return nil
		}
		out = t.Float64s()
		return nil
	})
	if cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, fmt.Errorf("dist: all_reduce: %v", err)
	}
	return out, nil
}

// copyInto is the one-rank result of a gather or scatter: dst <- src (same number of
// elements).
func copyInto(op string, dst, src *torch.Tensor) error {
	if dst.Numel() != src.Numel() {
		return fmt.Errorf("dist: %s: %d elements do not fit %d", op, src.Numel(), dst.Numel())
	}
	if dst.DType() != src.DType() {
		return fmt.Errorf("dist: %s: output dtype %s differs from input's %s", op, dst.DType(), src.DType())
	}
	return torch.WithScope(func(s *torch.Scope) error {
		dst.CopyFrom(s.In(src).Reshape(dst.Shape()...))
		return nil
	})
}
