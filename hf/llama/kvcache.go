package llama

import (
	"fmt"
	"math"

	"github.com/blockllm/blockllm-go/torch"
)

// KVCache holds, for every decoder layer, the keys (after RoPE) and values of the
// positions a model has seen, so that ForwardCached computes only new positions: each
// generated token then costs one position instead of the whole sequence. Keys and
// values are stored per key/value head ([batch, num_key_value_heads, capacity,
// head_dim], in the weights' dtype, on the model's device), as transformers' cache
// holds them: grouped-query attention reads them without repeating them per query head.
//
// A cache belongs to one model and one batch size. It grows (doubling) when a forward
// pass needs more positions than it holds, unless NewKVCache was given a capacity
// that suffices. Close frees it.
type KVCache struct {
	store     *torch.Scope
	k, v      []*torch.Tensor // per layer [B, nkv, capacity, hd]
	batch     int64
	n         int64 // positions held
	capacity  int64
	kvHeads   int64
	headDim   int64
	dtype     torch.DType
	device    torch.Device
	numLayers int
}

// NewKVCache returns an empty cache for batch sequences with room for capacity
// positions (0: grown as needed, starting at 64). Preallocating the positions a
// generation will need (prompt plus new tokens) avoids copies when it grows.
func (m *Model) NewKVCache(batch, capacity int) (*KVCache, error) {
	if batch < 1 {
		return nil, fmt.Errorf("llama: KV cache batch %d must be positive", batch)
	}
	if capacity < 0 {
		return nil, fmt.Errorf("llama: KV cache capacity %d must not be negative", capacity)
	}
	c := &KVCache{
		store:     torch.NewStore("kvcache"),
		batch:     int64(batch),
		kvHeads:   int64(m.Cfg.KVHeads()),
		headDim:   int64(m.Cfg.HeadDim()),
		dtype:     m.DType,
		device:    m.Opts.Device,
		numLayers: len(m.Layers),
	}
	if capacity == 0 {
		capacity = 64
	}
	if err := torch.Try(func() { c.reserve(int64(capacity)) }); err != nil {
		c.Close()
		return nil, fmt.Errorf("llama: KV cache of %d positions: %w", capacity, err)
	}
	return c, nil
}

// Len is the number of positions the cache holds.
func (c *KVCache) Len() int { return int(c.n) }

// Cap is the number of positions the cache has room for before it grows.
func (c *KVCache) Cap() int { return int(c.capacity) }

// Batch is the number of sequences the cache holds.
func (c *KVCache) Batch() int { return int(c.batch) }

// Bytes is the cache's allocated storage (keys and values of every layer at its
// capacity).
func (c *KVCache) Bytes() int64 {
	return 2 * int64(c.numLayers) * c.batch * c.kvHeads * c.capacity * c.headDim * int64(c.dtype.Size())
}

// Truncate drops the positions from n on (n <= Len()): the next ForwardCached then
// continues at position n. The storage is kept.
func (c *KVCache) Truncate(n int) error {
	if n < 0 || int64(n) > c.n {
		return fmt.Errorf("llama: cannot truncate a KV cache of %d positions to %d", c.n, n)
	}
	c.n = int64(n)
	return nil
}

// Close frees the cache's tensors. Closing twice is a no-op.
func (c *KVCache) Close() {
	if c != nil && c.store != nil {
		c.store.Close()
	}
}

// reserve makes room for need positions, keeping the ones held (panics with a
// *torch.Error on failure).
func (c *KVCache) reserve(need int64) {
	if need <= c.capacity {
		return
	}
	capacity := max(need, 2*c.capacity)
	shape := []int64{c.batch, c.kvHeads, capacity, c.headDim}
	for i := 0; i < c.numLayers; i++ {
		for _, kv := range []*[]*torch.Tensor{&c.k, &c.v} {
			t := c.store.Empty(shape, c.dtype, c.device)
			if len(*kv) <= i {
				*kv = append(*kv, t)
				continue
			}
			old := (*kv)[i]
			if c.n > 0 {
				s := torch.NewScope()
				s.In(t).Narrow(2, 0, c.n).CopyFrom(s.In(old).Narrow(2, 0, c.n))
				s.Close()
			}
			old.Free()
			(*kv)[i] = t
		}
	}
	c.capacity = capacity
}

// ForwardCached runs the model on new tokens ids [B, T] (int64, B the cache's batch)
// at positions pos..pos+T-1, attending over the cache's first pos positions and
// causally over the new ones, and returns the logits of the last new position [B,
// vocab] in the weights' dtype (owned by s). The new positions' keys and values are
// written into the cache, which then holds pos+T positions; pos may be less than
// c.Len() (the positions from pos on are dropped first: a shared prefix is reused and
// the rest recomputed) but not more. Every row of the batch is at the same positions
// (no padding). No gradients are recorded.
//
// The numerics are those of Forward on the whole sequence: the same RMSNorm, RoPE (at
// the positions' offsets), grouped-query attention and MLP, so the logits agree with
// Forward's logits at the same positions to float rounding.
func (m *Model) ForwardCached(s *torch.Scope, ids *torch.Tensor, pos int, c *KVCache) (logits *torch.Tensor, err error) {
	if c == nil || c.store == nil {
		return nil, fmt.Errorf("llama: ForwardCached needs a KV cache")
	}
	if c.numLayers != len(m.Layers) || c.kvHeads != int64(m.Cfg.KVHeads()) || c.headDim != int64(m.Cfg.HeadDim()) ||
		c.dtype != m.DType || c.device != m.Opts.Device {
		return nil, fmt.Errorf("llama: the KV cache (%d layers, %d kv heads of %d, %v on %v) does not fit the model (%d layers, %d kv heads of %d, %v on %v)",
			c.numLayers, c.kvHeads, c.headDim, c.dtype, c.device, len(m.Layers), m.Cfg.KVHeads(), m.Cfg.HeadDim(), m.DType, m.Opts.Device)
	}
	if ids == nil || ids.Dim() != 2 || ids.Size(1) < 1 {
		shape := "nil"
		if ids != nil {
			shape = fmt.Sprint(ids.Shape())
		}
		return nil, fmt.Errorf("llama: ForwardCached: input_ids must be [batch, new tokens] with at least one token, got %s", shape)
	}
	if ids.Size(0) != c.batch {
		return nil, fmt.Errorf("llama: ForwardCached: batch %d, but the KV cache holds %d sequences", ids.Size(0), c.batch)
	}
	if pos < 0 || int64(pos) > c.n {
		return nil, fmt.Errorf("llama: ForwardCached at position %d, but the KV cache holds %d positions (positions must follow the cached ones)", pos, c.n)
	}
	err = torch.Try(func() {
		torch.NoGrad(func() { logits = m.forwardCached(s, ids, int64(pos), c) })
	})
	if err != nil {
		c.n = min(c.n, int64(pos)) // the new positions were not (all) written
		return nil, err
	}
	return logits, nil
}

func (m *Model) forwardCached(s *torch.Scope, ids *torch.Tensor, pos int64, c *KVCache) *torch.Tensor {
	cfg := m.Cfg
	B, T := ids.Size(0), ids.Size(1)
	dev := m.Opts.Device
	c.n = pos
	c.reserve(pos + T)
	S := pos + T
	nh, nkv := int64(cfg.NumAttentionHeads), int64(cfg.KVHeads())
	group := nh / nkv

	ids = s.In(ids).ToDevice(torch.I64, dev)
	h := torch.Embedding(m.W(s, m.Embed), ids) // [B, T, D]
	cos, sin := m.ropeAt(s, pos, T, m.DType)   // [T, hd]
	cos4, sin4 := cos.Unsqueeze(0).Unsqueeze(0), sin.Unsqueeze(0).Unsqueeze(0)

	// Query row r of a key/value head's group is new position r mod T (the group's
	// query heads are stacked along the rows, see cachedLayer); it sees the keys up to
	// its own position. A single new token sees every cached key: no mask.
	var mask *torch.Tensor
	causal := false
	switch {
	case T == 1:
	case pos == 0 && group == 1:
		causal = true // square: the usual causal mask
	default:
		rows := s.Arange(float64(pos), float64(S), 1, torch.I64, dev).Unsqueeze(1) // [T, 1]
		cols := s.Arange(0, float64(S), 1, torch.I64, dev).Unsqueeze(0)            // [1, S]
		keep := cols.Le(rows)                                                      // [T, S]
		if group > 1 {
			keep = keep.Unsqueeze(0).Expand(group, T, S).Reshape(group*T, S)
		}
		mask = keep
	}
	scale := 1 / math.Sqrt(float64(cfg.HeadDim()))
	// A single new position attends with the math path (two small products and a
	// softmax): libtorch's fused kernel builds a plan for every new key length in bf16
	// (cuDNN's attention, libtorch 2.11 on an H200), which cost 40-50 ms per token
	// against 1-2 ms (measured; f32, or a fixed length, is fast either way).
	fused := m.Opts.FusedSDPA && T > 1
	for i := range m.Layers {
		ls := torch.NewScope()
		h = m.cachedLayer(ls, &m.Layers[i], i, ls.In(h), cos4, sin4, mask, causal, fused, c, B, T, pos, scale).MoveTo(s)
		ls.Close()
	}
	head := m.LMHead
	if head == nil {
		head = m.Embed
	}
	last := h.Narrow(1, T-1, 1).RMSNorm(m.W(s, m.Norm), cfg.RMSNormEps) // [B, 1, D]
	out := last.Linear(m.W(s, head), nil).Squeeze(1)                    // [B, V]
	c.n = S
	return out
}

// cachedLayer is decoderLayer for new positions pos..pos+T-1: their keys and values go
// into the cache, and their queries attend over the cache's first pos+T positions.
// Grouped-query attention reads each key/value head once: the group's query heads are
// stacked along the query rows ([B, nkv, group*T, hd]) instead of repeating the keys
// and values group times.
func (m *Model) cachedLayer(s *torch.Scope, L *Layer, layer int, h, cos4, sin4, mask *torch.Tensor, causal, fused bool, c *KVCache, B, T, pos int64, scale float64) *torch.Tensor {
	cfg := m.Cfg
	nh, nkv, hd := int64(cfg.NumAttentionHeads), int64(cfg.KVHeads()), int64(cfg.HeadDim())
	group := nh / nkv
	eps := cfg.RMSNormEps
	S := pos + T

	x := h.RMSNorm(m.W(s, L.InputNorm), eps)
	q := m.Linear(s, x, L.Q, L.QB, false).View(B, T, nh, hd).Transpose(1, 2)
	k := m.Linear(s, x, L.K, L.KB, false).View(B, T, nkv, hd).Transpose(1, 2)
	v := m.Linear(s, x, L.V, L.VB, false).View(B, T, nkv, hd).Transpose(1, 2)
	q = q.Mul(cos4).Add(rotateHalf(q).Mul(sin4))
	k = k.Mul(cos4).Add(rotateHalf(k).Mul(sin4))

	ck, cv := s.In(c.k[layer]), s.In(c.v[layer])
	ck.Narrow(2, pos, T).CopyFrom(k)
	cv.Narrow(2, pos, T).CopyFrom(v)
	keys, values := ck.Narrow(2, 0, S), cv.Narrow(2, 0, S) // [B, nkv, S, hd]

	if group > 1 {
		q = q.Reshape(B, nkv, group*T, hd)
	}
	a := torch.ScaledDotProductAttention(q, keys, values, torch.SDPAOptions{Mask: mask, Causal: causal, Scale: scale, Fused: fused})
	if group > 1 {
		a = a.Reshape(B, nh, T, hd)
	}
	a = m.Linear(s, a.Transpose(1, 2).Reshape(B, T, nh*hd), L.O, L.OB, false)
	h = h.Add(a)
	x = h.RMSNorm(m.W(s, L.PostNorm), eps)
	return h.Add(m.mlp(s, L, x, false))
}
