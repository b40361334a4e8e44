package llama

import (
	"fmt"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// SessionOptions configure a Session.
type SessionOptions struct {
	// Capacity preallocates the KV cache for this many positions (0: grown as needed).
	Capacity int
	// NoCache recomputes the whole sequence with Forward at every call instead of
	// keeping a KV cache (transformers' use_cache=False): the reference the cache is
	// checked against, and its cost.
	NoCache bool
}

// Session decodes one sequence incrementally: Logits(seq) returns the next-token
// logits after seq, computing only the positions that seq does not share with the
// sequence of the previous call (a KV cache holds the rest). A generation loop
// passes the prompt, then the prompt plus each new token: every call after the first
// computes one position. A conversation passes the whole conversation each turn and
// reuses the cached prefix. It implements generate.LM. Close frees the cache.
type Session struct {
	m     *Model
	cache *KVCache // nil with NoCache
	seq   []int    // the tokens whose keys and values the cache holds
	// Positions counts the positions computed so far (prompt and new tokens; with
	// NoCache, every position of every call).
	Positions int64
}

// NewSession starts a decoding session for one sequence (batch 1).
func (m *Model) NewSession(o SessionOptions) (*Session, error) {
	s := &Session{m: m}
	if !o.NoCache {
		c, err := m.NewKVCache(1, o.Capacity)
		if err != nil {
			return nil, err
		}
		s.cache = c
	}
	return s, nil
}

// Cache is the session's KV cache (nil with NoCache).
func (s *Session) Cache() *KVCache { return s.cache }

// Close frees the session's cache.
func (s *Session) Close() {
	if s.cache != nil {
		s.cache.Close()
	}
}

// Logits returns the model's next-token logits after seq (float32, one per vocabulary
// entry). Token ids must lie in the vocabulary.
func (s *Session) Logits(seq []int) ([]float32, error) {
	if len(seq) == 0 {
		return nil, fmt.Errorf("llama: no tokens to continue (an empty sequence has no next-token logits)")
	}
	V := s.m.Cfg.VocabSize
	for i, id := range seq {
		if id < 0 || id >= V {
			return nil, fmt.Errorf("llama: token %d at position %d is outside the vocabulary [0, %d)", id, i, V)
		}
	}
	if s.cache == nil {
		return s.recompute(seq)
	}
	// Reuse the longest prefix shared with the cached sequence; at least the last
	// token is computed (its logits are what is asked for).
	p := 0
	for p < len(s.seq) && p < len(seq)-1 && s.seq[p] == seq[p] {
		p++
	}
	var out []float32
	err := torch.WithScope(func(ts *torch.Scope) error {
		fresh := seq[p:]
		ids := make([]int64, len(fresh))
		for i, id := range fresh {
			ids[i] = int64(id)
		}
		in := ts.FromInt64(ids, 1, int64(len(ids)))
		lg, err := s.m.ForwardCached(ts, in, p, s.cache)
		if err != nil {
			s.seq = s.seq[:min(len(s.seq), s.cache.Len())]
			return err
		}
		s.Positions += int64(len(fresh))
		out = lg.Float32s()
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.seq = append(s.seq[:p], seq[p:]...)
	return out, nil
}

// recompute runs Forward on the whole sequence and returns the last position's logits.
func (s *Session) recompute(seq []int) ([]float32, error) {
	var out []float32
	err := torch.WithScope(func(ts *torch.Scope) error {
		ids := make([]int64, len(seq))
		for i, id := range seq {
			ids[i] = int64(id)
		}
		var ferr error
		torch.NoGrad(func() {
			in := ts.FromInt64(ids, 1, int64(len(ids)))
			o, err := s.m.Forward(ts, &nn.Batch{InputIDs: in}, false)
			if err != nil {
				ferr = err
				return
			}
			out = o.Logits.Select(1, int64(len(seq)-1)).Float32s()
		})
		return ferr
	})
	if err != nil {
		return nil, err
	}
	s.Positions += int64(len(seq))
	return out, nil
}
