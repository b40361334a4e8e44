package blockllm

import (
	"fmt"
	"math"

	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/torch"
)

// 8-bit Adam moments (AdamConfig.EightBit), as bitsandbytes' block-wise 8-bit AdamW
// (bnb.optim.AdamW8bit with its default block-wise quantisation):
//
//   - each moment is stored as uint8 codes shaped like the state (the parameter, or its
//     k masked coordinates) plus one float32 absmax per block of quantBlock consecutive
//     values of the flattened state (the last block may be shorter);
//   - a code is an index into a 256-value map in [-1, 1]: bitsandbytes' dynamic map
//     (create_dynamic_map), signed for the first moment, unsigned for the second; the
//     value is code_map[code] * absmax of its block;
//   - an update dequantises the tensor's two moments to float32, runs AdamWStep's math
//     with them and quantises them again (per block: absmax = max |value|, code = the
//     map value nearest value/absmax), in one shim call per tensor, so float32 moments
//     never exist for more than one tensor at a time.
//
// State bytes per quantised tensor of n values: 2 x (n + 4 x ceil(n/256)), about a
// quarter of float32 moments, plus the two maps (2 x 256 x 4 bytes) once per optimizer.

// quantBlock is the number of values sharing one absmax (bitsandbytes' blocksize).
const quantBlock = 256

// defaultMinSize is bitsandbytes' min_8bit_size: smaller states stay unquantised.
const defaultMinSize = 4096

// Checkpoint keys of the maps (beside "<param>.exp_avg" etc.).
const (
	mapSignedKey   = "adam8bit.map_signed"
	mapUnsignedKey = "adam8bit.map_unsigned"
)

// absmaxSuffix follows a moment's checkpoint key for its float32 block maxima.
const absmaxSuffix = ".absmax"

// quantMaps holds the signed (first moment) and unsigned (second moment) maps on the
// parameters' device.
type quantMaps struct {
	signed, unsigned *torch.Tensor
}

func (q *quantMaps) bytes() int64 {
	if !q.signed.Valid() {
		return 0
	}
	return q.signed.NBytes() + q.unsigned.NBytes()
}

func (q *quantMaps) free() {
	q.signed.Free()
	q.unsigned.Free()
}

// maskCount is the number of coordinates kept by mask fraction frac in (0, 1) of a
// tensor of n elements: ceil(frac*n), at least 1.
func maskCount(n int64, frac float64) int64 {
	k := int64(math.Ceil(frac * float64(n)))
	return max(1, min(k, n))
}

// stateNumel is the number of values of each moment of p: numel, or the masked count.
func stateNumel(p *nn.Param, frac float64) int64 {
	if frac <= 0 || frac >= 1 {
		return p.Numel()
	}
	return maskCount(p.Numel(), frac)
}

// minSize is the smallest state quantised.
func (c AdamConfig) minSize() int64 {
	if c.EightBitMinSize <= 0 {
		return defaultMinSize
	}
	return c.EightBitMinSize
}

// quantizedNumel reports whether a state of n values gets 8-bit moments.
func (a *adamState) quantizedNumel(n int64) bool {
	return a.cfg.EightBit && n >= a.cfg.minSize()
}

// quantized reports whether p's moments (at mask fraction frac) are 8-bit.
func (a *adamState) quantized(p *nn.Param, frac float64) bool {
	return a.quantizedNumel(stateNumel(p, frac))
}

// numBlocks is the number of absmax values of a state of n values.
func numBlocks(n int64) int64 { return (n + quantBlock - 1) / quantBlock }

// ensureMaps builds the maps on dev (once).
func (a *adamState) ensureMaps(dev torch.Device) {
	if a.maps.signed.Valid() {
		return
	}
	torch.WithScope(func(s *torch.Scope) error {
		a.maps.signed = s.DynamicMap(true).ToDevice(torch.F32, dev).MoveTo(a.store)
		a.maps.unsigned = s.DynamicMap(false).ToDevice(torch.F32, dev).MoveTo(a.store)
		return nil
	})
}

// init8 creates zeroed 8-bit moments of the given shape (all codes 0, all absmax 0:
// the value 0, as bitsandbytes initialises them).
func (a *adamState) init8(mo *moments, shape []int64, dev torch.Device) {
	var n int64 = 1
	for _, d := range shape {
		n *= d
	}
	nb := []int64{numBlocks(n)}
	mo.m = a.store.Zeros(shape, torch.U8, dev)
	mo.v = a.store.Zeros(shape, torch.U8, dev)
	mo.am = a.store.Zeros(nb, torch.F32, dev)
	mo.av = a.store.Zeros(nb, torch.F32, dev)
	mo.step = 0
}

// step8 runs one AdamW update of target (p, its master copy, or the selected
// coordinates) with mo's 8-bit moments.
func (a *adamState) step8(target, g *torch.Tensor, mo *moments, lr float64) {
	c := a.cfg
	torch.AdamW8bitStep(target, g, mo.m, mo.am, mo.v, mo.av, a.maps.signed, a.maps.unsigned, quantBlock,
		lr, c.Beta1, c.Beta2, c.Eps, c.WeightDecay, mo.step)
}

// update8 is update for 8-bit moments: dense, or masked by maskFrac in (0, 1) (the
// coordinates chosen by |g| at the first update, as update does). Temporaries (the
// masked selections) live in a scope of their own, freed before the next tensor.
func (a *adamState) update8(p *nn.Param, g *torch.Tensor, lr, maskFrac float64) {
	mo := a.ensure(p)
	dev := p.T.Device()
	a.ensureMaps(dev)
	if maskFrac <= 0 || maskFrac >= 1 {
		if !mo.m.Valid() {
			a.init8(mo, p.T.Shape(), dev)
			if a.useMaster(p) {
				mo.master = a.store.Empty(p.T.Shape(), torch.F32, dev)
				mo.master.CopyFrom(p.T)
			}
		}
		mo.step++
		if mo.master.Valid() {
			a.step8(mo.master, g, mo, lr)
			p.T.CopyFrom(mo.master)
			return
		}
		a.step8(p.T, g, mo, lr)
		return
	}
	torch.NoGrad(func() {
		torch.WithScope(func(s *torch.Scope) error {
			gflat := s.In(g).Reshape(-1)
			if !mo.idx.Valid() {
				k := maskCount(p.T.Numel(), maskFrac)
				_, idx := gflat.Abs().TopK(k, 0, true)
				mo.idx = idx.MoveTo(a.store)
				a.init8(mo, []int64{k}, dev)
				if a.useMaster(p) {
					mo.master = s.In(p.T).Reshape(-1).IndexSelect(0, mo.idx).To(torch.F32).MoveTo(a.store)
				}
			}
			mo.step++
			pflat := s.In(p.T).Reshape(-1)
			gsel := gflat.IndexSelect(0, mo.idx)
			if mo.master.Valid() {
				a.step8(mo.master, gsel, mo, lr)
				pflat.IndexPut(mo.idx, s.In(mo.master).To(p.T.DType()), false)
				return nil
			}
			psel := pflat.IndexSelect(0, mo.idx)
			a.step8(psel, gsel, mo, lr)
			pflat.IndexPut(mo.idx, psel, false)
			return nil
		})
	})
}

// snapshot8 adds the maps to a snapshot's tensors (when they exist).
func (a *adamState) snapshot8(ts map[string]*torch.Tensor) {
	if a.maps.signed.Valid() {
		ts[mapSignedKey] = a.maps.signed
		ts[mapUnsignedKey] = a.maps.unsigned
	}
}

// checkQuant checks that a saved state of name (n values, saved with block size block,
// 0 for ordinary moments) matches what this optimizer keeps for it, and reports whether
// it is 8-bit.
func (a *adamState) checkQuant(name string, block, n int64) (bool, error) {
	want := a.quantizedNumel(n)
	switch {
	case block != 0 && block != quantBlock:
		return false, fmt.Errorf("blockllm: optimizer state for %q is quantised in blocks of %d values, not %d", name, block, quantBlock)
	case block != 0 && !want:
		if !a.cfg.EightBit {
			return false, fmt.Errorf("blockllm: optimizer state for %q holds 8-bit moments but 8-bit moments are off (resume with --adam-8bit)", name)
		}
		return false, fmt.Errorf("blockllm: optimizer state for %q holds 8-bit moments for %d values, below the 8-bit minimum size %d", name, n, a.cfg.minSize())
	case block == 0 && want:
		return false, fmt.Errorf("blockllm: optimizer state for %q holds unquantised moments but 8-bit moments are on (resume without --adam-8bit)", name)
	}
	return block != 0, nil
}

// restoreMaps loads the maps of a snapshot onto dev, marking their keys used. They are
// required when need (some state is 8-bit); without EightBit they are an error.
func (a *adamState) restoreMaps(ts map[string]*torch.Tensor, used map[string]bool, need bool, dev torch.Device) (quantMaps, error) {
	var q quantMaps
	src1, src2 := ts[mapSignedKey], ts[mapUnsignedKey]
	if src1 == nil && src2 == nil && !need {
		return q, nil
	}
	if !a.cfg.EightBit {
		return q, fmt.Errorf("blockllm: the optimizer state holds 8-bit maps but 8-bit moments are off (resume with --adam-8bit)")
	}
	for _, kv := range []struct {
		key string
		src *torch.Tensor
		dst **torch.Tensor
	}{{mapSignedKey, src1, &q.signed}, {mapUnsignedKey, src2, &q.unsigned}} {
		if kv.src == nil || kv.src.Dim() != 1 || kv.src.Size(0) != 256 || kv.src.DType() != torch.F32 {
			q.free()
			return quantMaps{}, fmt.Errorf("blockllm: optimizer state lacks the 8-bit map %q (float32, 256 values)", kv.key)
		}
		used[kv.key] = true
		t := a.store.Empty([]int64{256}, torch.F32, dev)
		t.CopyFrom(kv.src)
		*kv.dst = t
	}
	return q, nil
}
