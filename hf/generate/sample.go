package generate

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Sampling chooses the next token from a model's logits, as transformers'
// generate does with its logits warpers: greedy (argmax) when Temperature is 0,
// otherwise the logits are divided by Temperature, cut to the TopK most likely
// tokens, then to the nucleus of TopP probability mass, and a token is drawn from
// the softmax of what remains.
type Sampling struct {
	// Temperature divides the logits; 0 means greedy decoding (argmax; the other
	// fields are then unused).
	Temperature float64
	// TopK keeps the k most likely tokens (0: no limit).
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability reaches
	// TopP (nucleus sampling); 0 or 1: no limit.
	TopP float64
	// Seed seeds the random draws: the same seed, logits and options give the same
	// tokens.
	Seed uint64
}

// Greedy reports whether s picks the argmax.
func (s Sampling) Greedy() bool { return s.Temperature == 0 }

// Validate checks the ranges: Temperature >= 0, TopK >= 0, TopP in [0, 1].
func (s Sampling) Validate() error {
	switch {
	case s.Temperature < 0 || math.IsNaN(s.Temperature) || math.IsInf(s.Temperature, 0):
		return fmt.Errorf("generate: temperature %g must be finite and >= 0 (0: greedy)", s.Temperature)
	case s.TopK < 0:
		return fmt.Errorf("generate: top-k %d must not be negative (0: no limit)", s.TopK)
	case !(s.TopP >= 0 && s.TopP <= 1):
		return fmt.Errorf("generate: top-p %g must be in [0, 1] (1: no limit)", s.TopP)
	}
	return nil
}

// Sampler draws tokens with a Sampling's rules from its own seeded random stream.
type Sampler struct {
	o   Sampling
	rng *rand.PCG
}

// NewSampler returns a sampler seeded with o.Seed.
func NewSampler(o Sampling) (*Sampler, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Sampler{o: o, rng: rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15)}, nil
}

// uniform is a draw from [0, 1) with 53 random bits.
func (s *Sampler) uniform() float64 { return float64(s.rng.Uint64()>>11) / (1 << 53) }

// Next picks the next token from logits (one per vocabulary entry). NaN logits
// are an error (a model that diverged).
func (s *Sampler) Next(logits []float32) (int, error) {
	if len(logits) == 0 {
		return 0, fmt.Errorf("generate: empty logits")
	}
	if s.o.Greedy() {
		return Argmax(logits)
	}
	ids, probs, err := Candidates(logits, s.o)
	if err != nil {
		return 0, err
	}
	u := s.uniform()
	acc := 0.0
	for i, p := range probs {
		acc += p
		if u < acc {
			return ids[i], nil
		}
	}
	for i := len(probs) - 1; i > 0; i-- { // rounding: acc summed to just under 1
		if probs[i] > 0 {
			return ids[i], nil
		}
	}
	return ids[0], nil
}

// Argmax is the index of the largest logit (the first of equal ones, as torch.argmax).
func Argmax(logits []float32) (int, error) {
	best := -1
	for i, v := range logits {
		if math.IsNaN(float64(v)) {
			return 0, fmt.Errorf("generate: logit %d is NaN", i)
		}
		if best < 0 || v > logits[best] {
			best = i
		}
	}
	return best, nil
}

// Candidates returns the tokens a sampling step may draw and their probabilities,
// most likely first (equal logits: the lower id first), summing to 1: the softmax of
// logits/Temperature over the TopK most likely tokens, cut to the nucleus: the most
// likely tokens while the mass of those before them is below TopP (transformers'
// TopPLogitsWarper keeps the same set: it drops the least likely tokens whose
// cumulative mass is at most 1-TopP, and always keeps one). With Temperature 0 the
// one candidate is the argmax.
func Candidates(logits []float32, o Sampling) (ids []int, probs []float64, err error) {
	if err := o.Validate(); err != nil {
		return nil, nil, err
	}
	if o.Greedy() {
		id, err := Argmax(logits)
		if err != nil {
			return nil, nil, err
		}
		return []int{id}, []float64{1}, nil
	}
	V := len(logits)
	if V == 0 {
		return nil, nil, fmt.Errorf("generate: empty logits")
	}
	z := make([]float64, V)
	zmax := math.Inf(-1)
	for i, v := range logits {
		if math.IsNaN(float64(v)) {
			return nil, nil, fmt.Errorf("generate: logit %d is NaN", i)
		}
		z[i] = float64(v) / o.Temperature
		zmax = max(zmax, z[i])
	}
	if math.IsInf(zmax, -1) {
		return nil, nil, fmt.Errorf("generate: every logit is -inf")
	}
	k := V
	if o.TopK > 0 && o.TopK < V {
		k = o.TopK
	}
	// The softmax normaliser over the top-k set, without sorting it all: the sum over
	// everything when k is the vocabulary, else over the k taken below.
	nucleus := o.TopP > 0 && o.TopP < 1
	if !nucleus {
		ids = topN(z, k)
		return ids, softmaxOf(z, ids, zmax), nil
	}
	var total float64
	if k == V {
		for _, v := range z {
			total += math.Exp(v - zmax)
		}
	} else {
		ids = topN(z, k)
		for _, id := range ids {
			total += math.Exp(z[id] - zmax)
		}
	}
	// Grow the sorted prefix until it holds the nucleus (usually a few dozen tokens
	// out of a vocabulary of 32k-256k).
	for n := min(k, 64); ; n = min(k, 4*n) {
		if ids == nil || len(ids) < n {
			ids = topN(z, n)
		}
		mass := 0.0
		for i, id := range ids[:n] {
			if i > 0 && mass >= o.TopP*total {
				return ids[:i], softmaxOf(z, ids[:i], zmax), nil
			}
			mass += math.Exp(z[id] - zmax)
		}
		if n == k {
			return ids[:n], softmaxOf(z, ids[:n], zmax), nil
		}
	}
}

// softmaxOf is the softmax of z over ids (zmax: the max of z, for stability).
func softmaxOf(z []float64, ids []int, zmax float64) []float64 {
	p := make([]float64, len(ids))
	sum := 0.0
	for i, id := range ids {
		p[i] = math.Exp(z[id] - zmax)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

// topN returns the indices of the n largest values of z, largest first (equal
// values: the lower index first).
func topN(z []float64, n int) []int {
	before := func(a, b int) bool { return z[a] > z[b] || (z[a] == z[b] && a < b) }
	if n >= len(z)/4 {
		ids := make([]int, len(z))
		for i := range ids {
			ids[i] = i
		}
		slices.SortFunc(ids, func(a, b int) int {
			if before(a, b) {
				return -1
			}
			if before(b, a) {
				return 1
			}
			return 0
		})
		return ids[:n]
	}
	h := &minHeap{before: before}
	for i := range z {
		if h.Len() < n {
			heap.Push(h, i)
		} else if before(i, h.ids[0]) {
			h.ids[0] = i
			heap.Fix(h, 0)
		}
	}
	ids := make([]int, h.Len())
	for i := len(ids) - 1; i >= 0; i-- {
		ids[i] = heap.Pop(h).(int)
	}
	return ids
}

// minHeap keeps the n best indices seen, the worst at the root.
type minHeap struct {
	ids    []int
	before func(a, b int) bool
}

func (h *minHeap) Len() int           { return len(h.ids) }
func (h *minHeap) Less(i, j int) bool { return h.before(h.ids[j], h.ids[i]) }
func (h *minHeap) Swap(i, j int)      { h.ids[i], h.ids[j] = h.ids[j], h.ids[i] }
func (h *minHeap) Push(x any)         { h.ids = append(h.ids, x.(int)) }
func (h *minHeap) Pop() any {
	x := h.ids[len(h.ids)-1]
	h.ids = h.ids[:len(h.ids)-1]
	return x
}
