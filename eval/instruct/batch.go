package instruct

import (
	"encoding/json"
	"fmt"

	"github.com/blockllm/blockllm-go/eval/internal/sampler"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// Singles makes one Sequence of each example (training without packing).
func Singles(examples []Example) []Sequence {
	out := make([]Sequence, len(examples))
	for i, e := range examples {
		out[i] = Sequence{IDs: e.IDs, Labels: e.Labels, Starts: []int{0}, Examples: []int{i}}
	}
	return out
}

// Collate builds a causal-LM batch from seqs: InputIDs [B, T] int64 padded on the right
// with pad to the longest sequence, AttentionMask [B, T] (1 for tokens), Labels [B, T]
// (the sequences' labels, IgnoreIndex on padding; the model shifts them). The tensors are
// made in s and moved to dev.
func Collate(s *torch.Scope, seqs []Sequence, pad int, dev torch.Device) (*nn.Batch, error) {
	if len(seqs) == 0 {
		return nil, fmt.Errorf("instruct: empty batch")
	}
	T := 0
	for _, q := range seqs {
		T = max(T, len(q.IDs))
	}
	B := len(seqs)
	ids := make([]int64, B*T)
	mask := make([]int64, B*T)
	labels := make([]int64, B*T)
	for i, q := range seqs {
		if len(q.Labels) != len(q.IDs) {
			return nil, fmt.Errorf("instruct: a sequence has %d ids and %d labels", len(q.IDs), len(q.Labels))
		}
		for t := 0; t < T; t++ {
			k := i*T + t
			if t < len(q.IDs) {
				ids[k], mask[k], labels[k] = int64(q.IDs[t]), 1, int64(q.Labels[t])
			} else {
				ids[k], labels[k] = int64(pad), IgnoreIndex
			}
		}
	}
	var b *nn.Batch
	err := torch.Try(func() {
		move := func(x *torch.Tensor) *torch.Tensor {
			if dev != torch.CPU {
				return x.ToDevice(x.DType(), dev)
			}
			return x
		}
		b = &nn.Batch{InputIDs: move(s.FromInt64(ids, int64(B), int64(T))),
			AttentionMask: move(s.FromInt64(mask, int64(B), int64(T))),
			Labels:        move(s.FromInt64(labels, int64(B), int64(T)))}
	})
	return b, err
}

// LearnedPositions counts the positions a causal-LM loss scores in seqs: labels after
// the first position (the model shifts them) that are not IgnoreIndex.
func LearnedPositions(seqs []Sequence) int {
	n := 0
	for _, q := range seqs {
		for t := 1; t < len(q.Labels); t++ {
			if q.Labels[t] != IgnoreIndex {
				n++
			}
		}
	}
	return n
}

// Batches is a resumable source of shuffled training batches over sequences (it
// implements blockllm.Data): every epoch visits each sequence once, in an order drawn
// from (Seed, epoch); the last batch of an epoch may be smaller. In data-parallel
// training (size > 1) each rank takes its share of every global batch of
// batchSize*size sequences.
type Batches struct {
	Seqs   []Sequence
	Pad    int
	Device torch.Device

	s *sampler.Sampler
}

// NewBatches returns a source at epoch 0 for rank of size ranks (size 0 or 1: one
// process).
func NewBatches(seqs []Sequence, batchSize, pad int, seed uint64, dev torch.Device, rank, size int) (*Batches, error) {
	s, err := sampler.New(len(seqs), batchSize, seed, rank, size)
	if err != nil {
		return nil, fmt.Errorf("instruct: %w", err)
	}
	return &Batches{Seqs: seqs, Pad: pad, Device: dev, s: s}, nil
}

// StepsPerEpoch is the number of (global) batches in one epoch.
func (d *Batches) StepsPerEpoch() int { return d.s.StepsPerEpoch() }

// Next returns this rank's next batch, its tensors owned by s.
func (d *Batches) Next(s *torch.Scope) (*nn.Batch, error) {
	idx := d.s.Next()
	seqs := make([]Sequence, len(idx))
	for k, i := range idx {
		seqs[k] = d.Seqs[i]
	}
	return Collate(s, seqs, d.Pad, d.Device)
}

// State returns the epoch and position as JSON.
func (d *Batches) State() (json.RawMessage, error) { return d.s.State() }

// Restore continues from a State of a source over the same sequences.
func (d *Batches) Restore(state json.RawMessage) error {
	if err := d.s.Restore(state); err != nil {
		return fmt.Errorf("instruct: %w (other data, or another --pack or --max-len?)", err)
	}
	return nil
}
