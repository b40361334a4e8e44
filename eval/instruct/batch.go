package instruct

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

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
// from (Seed, epoch); the last batch of an epoch may be smaller.
type Batches struct {
	Seqs      []Sequence
	BatchSize int
	Pad       int
	Seed      uint64
	Device    torch.Device

	epoch, pos int
	order      []int
}

// NewBatches checks the sequences and returns a source at epoch 0.
func NewBatches(seqs []Sequence, batchSize, pad int, seed uint64, dev torch.Device) (*Batches, error) {
	if len(seqs) == 0 {
		return nil, fmt.Errorf("instruct: no training examples")
	}
	if batchSize < 1 {
		return nil, fmt.Errorf("instruct: batch size %d must be positive", batchSize)
	}
	d := &Batches{Seqs: seqs, BatchSize: batchSize, Pad: pad, Seed: seed, Device: dev}
	d.shuffle()
	return d, nil
}

// StepsPerEpoch is the number of batches in one epoch.
func (d *Batches) StepsPerEpoch() int { return (len(d.Seqs) + d.BatchSize - 1) / d.BatchSize }

func (d *Batches) shuffle() {
	d.order = rand.New(rand.NewPCG(d.Seed, uint64(d.epoch))).Perm(len(d.Seqs))
}

// Next returns the next batch, its tensors owned by s.
func (d *Batches) Next(s *torch.Scope) (*nn.Batch, error) {
	if d.pos >= len(d.order) {
		d.epoch++
		d.pos = 0
		d.shuffle()
	}
	end := min(d.pos+d.BatchSize, len(d.order))
	seqs := make([]Sequence, 0, end-d.pos)
	for _, i := range d.order[d.pos:end] {
		seqs = append(seqs, d.Seqs[i])
	}
	d.pos = end
	return Collate(s, seqs, d.Pad, d.Device)
}

type batchesState struct {
	Epoch int `json:"epoch"`
	Pos   int `json:"pos"`
	N     int `json:"sequences"`
}

// State returns the epoch and position as JSON.
func (d *Batches) State() (json.RawMessage, error) {
	return json.Marshal(batchesState{Epoch: d.epoch, Pos: d.pos, N: len(d.Seqs)})
}

// Restore continues from a State of a source over the same sequences.
func (d *Batches) Restore(state json.RawMessage) error {
	var st batchesState
	if err := json.Unmarshal(state, &st); err != nil {
		return fmt.Errorf("instruct: data state: %w", err)
	}
	if st.N != len(d.Seqs) || st.Pos < 0 || st.Pos > len(d.Seqs) || st.Epoch < 0 {
		return fmt.Errorf("instruct: data state (epoch %d, position %d of %d sequences) does not fit %d sequences (other data or --pack/--max-len?)",
			st.Epoch, st.Pos, st.N, len(d.Seqs))
	}
	d.epoch, d.pos = st.Epoch, st.Pos
	d.shuffle()
	return nil
}
