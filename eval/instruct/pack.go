package instruct

import (
	"fmt"
	"sort"
)

// Sequence is a packed training sequence: several examples end to end.
type Sequence struct {
	// IDs and Labels are the examples' ids and labels concatenated; labels
	// stay per example (a prompt position of one example is never learned
	// because of its neighbour).
	IDs, Labels []int
	// Starts holds the offset of each example in IDs (Starts[0] == 0).
	Starts []int
	// Examples holds the indices of the packed examples in the slice given
	// to Pack, in the order they appear.
	Examples []int
}

// PositionIDs returns position ids that restart at 0 at every example, for
// trainers that keep examples apart (a block-diagonal attention mask, or
// flash-attention's varlen kernels as TRL's padding-free packing does).
func (s *Sequence) PositionIDs() []int {
	pos := make([]int, len(s.IDs))
	for k, a := range s.Starts {
		e := len(s.IDs)
		if k+1 < len(s.Starts) {
			e = s.Starts[k+1]
		}
		for i := a; i < e; i++ {
			pos[i] = i - a
		}
	}
	return pos
}

// Pack packs examples of at most maxLen tokens into sequences of at most
// maxLen tokens with best-fit decreasing (the longest examples first, each
// into the fullest sequence that still has room), the default strategy of
// TRL's SFTTrainer(packing=True). No example is split. The result is
// deterministic: ties keep the examples' order.
//
// Attention: the sequences are plain concatenations. A model run on
// Sequence.IDs with an ordinary causal mask lets each example attend to the
// examples packed before it, which is what Hugging Face's packing does
// unless the trainer passes position ids / sequence boundaries to an
// attention kernel that honours them; Starts and PositionIDs give those
// boundaries. The loss is unaffected by neighbours either way: every
// example starts with prompt positions (labels IgnoreIndex), so no position
// is learned from the end of the previous example.
func Pack(examples []Example, maxLen int) ([]Sequence, error) {
	if maxLen <= 0 {
		return nil, fmt.Errorf("instruct: Pack needs a positive length, not %d", maxLen)
	}
	order := make([]int, len(examples))
	for i := range order {
		order[i] = i
		if n := len(examples[i].IDs); n > maxLen {
			return nil, fmt.Errorf("instruct: %s: example of %d tokens is longer than the packing length %d (truncate first)", examples[i].Where, n, maxLen)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return len(examples[order[a]].IDs) > len(examples[order[b]].IDs) })
	// byFree[r] lists the open sequences with r tokens of room, in creation order.
	byFree := make([][]int, maxLen+1)
	var seqs []Sequence
	for _, i := range order {
		n := len(examples[i].IDs)
		if n == 0 {
			continue
		}
		s := -1
		for r := n; r <= maxLen; r++ {
			if len(byFree[r]) > 0 {
				s = byFree[r][0]
				byFree[r] = byFree[r][1:]
				break
			}
		}
		if s < 0 {
			s = len(seqs)
			seqs = append(seqs, Sequence{})
		}
		q := &seqs[s]
		q.Starts = append(q.Starts, len(q.IDs))
		q.Examples = append(q.Examples, i)
		q.IDs = append(q.IDs, examples[i].IDs...)
		q.Labels = append(q.Labels, examples[i].Labels...)
		if r := maxLen - len(q.IDs); r > 0 {
			byFree[r] = append(byFree[r], s)
		}
	}
	return seqs, nil
}
