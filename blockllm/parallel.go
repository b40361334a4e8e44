package blockllm

import (
	"context"
	"fmt"
	"sort"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
	"github.com/blockllm/blockllm-go/torch/dist"
)

// Data parallelism (TrainConfig.Dist with more than one rank), with DDP's semantics:
//
//   - rank 0's weights are broadcast when the trainer is made, so every rank starts equal;
//   - every rank runs its micro-batches (its shard of each global batch: the data sources
//     take Rank and Size), then the trainable gradients are averaged across ranks in
//     buckets (not one collective per tensor) before clipping and the update, so every
//     rank applies the same update; with StepInBackward each gradient is averaged in
//     backward as soon as it is complete (overlapping the rest of backward);
//   - the loss is averaged across ranks before it is reported, checked for NaN and given
//     to the optimizer, so BlockLLM's trigger fires at the same step on every rank, and
//     its selection pass scores each tensor by the norm of its gradient averaged across
//     ranks (what one process would see on the union of the batches);
//   - with ShardState (ZeRO stage 1) each trainable tensor's Adam state lives on one rank,
//     which updates it and broadcasts the new values.
//
// Checkpoints are written by rank 0 (the state is the same everywhere, or gathered to it
// first when sharded); every rank resumes from them.

// bucketBytes bounds an all-reduce bucket (DDP's default is 25 MiB).
const bucketBytes = 32 << 20

// parallel reports whether the trainer runs with more than one rank.
func (t *Trainer) parallel() bool { return t.cfg.Dist != nil && t.cfg.Dist.Size() > 1 }

// distributed is an optimizer that needs the group itself (BlockLLM's selection pass).
type distributed interface{ setGroup(g *dist.Group) }

// sharded is an optimizer whose Adam state can be split across ranks (ZeRO stage 1).
type sharded interface{ adamStateOf() *adamState }

// stopRequested reports whether the run should stop now: ctx is cancelled (a signal)
// on this rank or, with data parallelism, on any rank (a signal may reach the ranks at
// different steps; they must all stop at the same one).
func (t *Trainer) stopRequested(ctx context.Context) (bool, error) {
	stop := ctx.Err() != nil
	if !t.parallel() {
		return stop, nil
	}
	v, err := t.cfg.Dist.AllReduceFloat64s([]float64{b2f(stop)}, dist.Max)
	if err != nil {
		return false, fmt.Errorf("blockllm: %w", err)
	}
	return v[0] > 0, nil
}

// broadcastWeights copies rank 0's parameters to every rank.
func (t *Trainer) broadcastWeights() error {
	for _, p := range t.model.Parameters() {
		if err := t.cfg.Dist.Broadcast(p.T, 0); err != nil {
			return fmt.Errorf("blockllm: broadcasting %s from rank 0: %w", p.Name, err)
		}
	}
	return nil
}

// averageLoss averages a step's loss across ranks.
func (t *Trainer) averageLoss(v float64) (float64, error) {
	out, err := t.cfg.Dist.AllReduceFloat64s([]float64{v}, dist.Avg)
	if err != nil {
		return 0, fmt.Errorf("blockllm: averaging the loss across ranks: %w", err)
	}
	return out[0], nil
}

// averageGrads averages grads across ranks in place, in buckets of one dtype and device
// of at most bucketBytes.
func averageGrads(g *dist.Group, grads []*torch.Tensor) error {
	for i := 0; i < len(grads); {
		j, n := i, int64(0)
		for j < len(grads) && (j == i || (grads[j].DType() == grads[i].DType() && grads[j].Device() == grads[i].Device() &&
			n+grads[j].NBytes() <= bucketBytes)) {
			n += grads[j].NBytes()
			j++
		}
		if err := g.AllReduceBucket(grads[i:j], dist.Avg); err != nil {
			return fmt.Errorf("blockllm: averaging gradients across ranks: %w", err)
		}
		i = j
	}
	return nil
}

// assignOwners gives each trainable tensor a rank that keeps its Adam state (ZeRO-1):
// largest first, to the least loaded rank, the same on every rank.
func (t *Trainer) assignOwners(trainable []*nn.Param) {
	a := t.opt.(sharded).adamStateOf()
	size := t.cfg.Dist.Size()
	order := append([]*nn.Param(nil), trainable...)
	sort.SliceStable(order, func(i, j int) bool { return order[i].Numel() > order[j].Numel() })
	load := make([]int64, size)
	owner := make(map[*nn.Param]int, len(order))
	for _, p := range order {
		r := 0
		for k := 1; k < size; k++ {
			if load[k] < load[r] {
				r = k
			}
		}
		owner[p] = r
		load[r] += p.Numel()
	}
	rank := t.cfg.Dist.Rank()
	t.owner = owner
	a.owned = func(p *nn.Param) bool {
		r, ok := owner[p]
		return !ok || r == rank
	}
	for p := range a.st { // state of tensors this rank no longer owns
		if !a.owned(p) {
			a.drop(p)
		}
	}
}

// broadcastOwned sends every trainable tensor from the rank that updated it (ZeRO-1).
func (t *Trainer) broadcastOwned(trainable []*nn.Param) error {
	for _, p := range trainable {
		if err := t.cfg.Dist.Broadcast(p.T, t.owner[p]); err != nil {
			return fmt.Errorf("blockllm: sharded update: broadcasting %s from rank %d: %w", p.Name, t.owner[p], err)
		}
	}
	return nil
}

// gatherState gives every rank the Adam state of every trainable tensor (ZeRO-1, before
// a checkpoint): each owner broadcasts its moments, step count and mask; dropState
// removes the copies again.
func (t *Trainer) gatherState(trainable []*nn.Param) error {
	a := t.opt.(sharded).adamStateOf()
	rank := t.cfg.Dist.Rank()
	for _, p := range trainable {
		owner := t.owner[p]
		// what the owner holds: [exists, initialised, step, masked k, master, 8-bit]
		info := make([]float64, 6)
		if mo := a.st[p]; rank == owner && mo != nil {
			k := 0.0
			if mo.idx.Valid() {
				k = float64(mo.idx.Numel())
			}
			info = []float64{1, b2f(mo.m.Valid()), float64(mo.step), k, b2f(mo.master.Valid()), b2f(mo.am.Valid())}
		}
		sum, err := t.cfg.Dist.AllReduceFloat64s(info, dist.Sum)
		if err != nil {
			return fmt.Errorf("blockllm: gathering optimizer state: %w", err)
		}
		if rank == owner || sum[0] == 0 {
			continue
		}
		mo := &moments{step: int64(sum[2])}
		a.st[p] = mo
		if sum[1] == 0 {
			continue
		}
		shape, dev := p.T.Shape(), p.T.Device()
		if k := int64(sum[3]); k > 0 {
			mo.idx = a.store.Empty([]int64{k}, torch.I64, dev)
			shape = []int64{k}
		}
		if sum[5] != 0 { // 8-bit codes and block maxima, as init8
			var n int64 = 1
			for _, d := range shape {
				n *= d
			}
			a.ensureMaps(dev) // the same values as the owner's: the maps are a fixed function
			mo.m = a.store.Empty(shape, torch.U8, dev)
			mo.v = a.store.Empty(shape, torch.U8, dev)
			mo.am = a.store.Empty([]int64{numBlocks(n)}, torch.F32, dev)
			mo.av = a.store.Empty([]int64{numBlocks(n)}, torch.F32, dev)
		} else {
			mo.m = a.store.Empty(shape, a.stateDType(p), dev)
			mo.v = a.store.Empty(shape, a.stateDType(p), dev)
		}
		if sum[4] != 0 {
			mo.master = a.store.Empty(shape, torch.F32, dev)
		}
	}
	for _, p := range trainable {
		mo := a.st[p]
		if mo == nil {
			continue
		}
		for _, x := range []*torch.Tensor{mo.idx, mo.m, mo.v, mo.am, mo.av, mo.master} {
			if x.Valid() {
				if err := t.cfg.Dist.Broadcast(x, t.owner[p]); err != nil {
					return fmt.Errorf("blockllm: gathering optimizer state of %s: %w", p.Name, err)
				}
			}
		}
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (o *AdamW) adamStateOf() *adamState     { return o.adam }
func (o *layerwise) adamStateOf() *adamState { return o.adam }
func (o *BlockLLM) adamStateOf() *adamState  { return o.adam }

// setGroup makes BlockLLM's selection pass average the gradients across ranks.
func (o *BlockLLM) setGroup(g *dist.Group) { o.group = g }

// checkpointParallel writes a checkpoint from rank 0 while the others wait: the state is
// the same on every rank (with ShardState it is gathered to every rank first and the
// copies of the others' shards dropped afterwards).
func (t *Trainer) checkpointParallel(dir string) error {
	g := t.cfg.Dist
	trainable := t.opt.Trainable()
	if t.cfg.ShardState {
		if err := t.gatherState(trainable); err != nil {
			return err
		}
	}
	var saveErr error
	if g.IsMain() {
		saveErr = t.SaveCheckpoint(dir)
		if saveErr == nil {
			saveErr = pruneCheckpoints(t.cfg.CheckpointDir, t.cfg.KeepCheckpoints)
		}
	}
	// every rank learns whether rank 0 succeeded
	ok := 1.0
	if saveErr != nil {
		ok = 0
	}
	res, err := g.AllReduceFloat64s([]float64{ok}, dist.Min)
	if err != nil {
		return fmt.Errorf("blockllm: checkpoint: %w", err)
	}
	if t.cfg.ShardState {
		a := t.opt.(sharded).adamStateOf()
		for p := range a.st {
			if a.owned != nil && !a.owned(p) {
				a.drop(p)
			}
		}
	}
	if saveErr != nil {
		return saveErr
	}
	if res[0] == 0 {
		return fmt.Errorf("blockllm: checkpoint %s: rank 0 failed to write it", dir)
	}
	t.lastCkpt = dir
	t.emit(&CheckpointEvent{Step: t.step, Path: dir})
	return nil
}

// worldSize is the number of ranks (1 without a group).
func (t *Trainer) worldSize() int {
	if t.cfg.Dist == nil {
		return 1
	}
	return t.cfg.Dist.Size()
}
