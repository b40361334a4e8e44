package torch

import "github.com/blockllm/blockllm-go/cgo"

// DynamicMap returns, in s on the CPU, bitsandbytes' 8-bit dynamic quantisation map
// (create_dynamic_map(signed, max_exponent_bits=7, total_bits=8)): 256 sorted float32
// values in [-1, 1], built with the same libtorch ops as the Python function. The signed
// map (for values of either sign) holds 0, 1 and ±127 values spread over seven decades
// (10⁻⁷ to 1); the unsigned map 0, 1 and 254 positive values.
func (s *Scope) DynamicMap(signed bool) *Tensor {
	mustInit("dynamic_map")
	h, err := cgo.DynamicMap(signed)
	if err != nil {
		fail("dynamic_map", err)
	}
	return s.add(h)
}

// QuantizeBlockwise quantises a (any float dtype, n elements) in place into q (uint8,
// n elements, contiguous) and absmax (float32, ceil(n/block) elements) as bitsandbytes'
// quantize_blockwise: per block of block consecutive values (the last one may be
// shorter) absmax is max |a|, and each value's code is the index of the map value
// nearest a * (1/max(absmax, 1e-38)), clamped to [-1, 1] (ties go to the lower index).
func QuantizeBlockwise(a, code *Tensor, block int64, q, absmax *Tensor) {
	for _, t := range []*Tensor{a, code, q, absmax} {
		t.check("quantize_blockwise")
	}
	if err := cgo.QuantizeBlockwise(a.h, code.h, block, q.h, absmax.h); err != nil {
		fail("quantize_blockwise", err)
	}
}

// DequantizeBlockwise returns code[q] * absmax[block of the element] in float32,
// shaped like q (bitsandbytes' dequantize_blockwise).
func DequantizeBlockwise(q, absmax, code *Tensor, block int64) *Tensor {
	s := resultScope("dequantize_blockwise", q, absmax, code)
	h, err := cgo.DequantizeBlockwise(q.h, absmax.h, code.h, block)
	return wrap1("dequantize_blockwise", s, h, err)
}

// AdamW8bitStep performs AdamWStep's update of p from g with 8-bit moments: the codes
// qm, qv (uint8, shaped like p) and block maxima am, av (float32) are dequantised with
// the maps code1 (signed, first moment) and code2 (unsigned, second moment), updated in
// float32 and quantised back in place, as bitsandbytes' block-wise 8-bit Adam does. On
// the CPU (contiguous tensors, f32/bf16/f16 parameter) one kernel does it block by
// block in one pass; elsewhere it is AdamW8bitStepOps.
func AdamW8bitStep(p, g, qm, am, qv, av, code1, code2 *Tensor, block int64, lr, beta1, beta2, eps, weightDecay float64, step int64) {
	adamw8bit(p, g, qm, am, qv, av, code1, code2, block, lr, beta1, beta2, eps, weightDecay, step, true)
}

// AdamW8bitStepOps is AdamW8bitStep with libtorch ops on any device:
// DequantizeBlockwise of both moments into float32 tensors, AdamWStep, and
// QuantizeBlockwise back. The float32 moments exist only during the call.
func AdamW8bitStepOps(p, g, qm, am, qv, av, code1, code2 *Tensor, block int64, lr, beta1, beta2, eps, weightDecay float64, step int64) {
	adamw8bit(p, g, qm, am, qv, av, code1, code2, block, lr, beta1, beta2, eps, weightDecay, step, false)
}

func adamw8bit(p, g, qm, am, qv, av, code1, code2 *Tensor, block int64, lr, beta1, beta2, eps, weightDecay float64, step int64, kernel bool) {
	for _, t := range []*Tensor{p, g, qm, am, qv, av, code1, code2} {
		t.check("adamw8bit")
	}
	if err := cgo.AdamW8bitStep(p.h, g.h, qm.h, am.h, qv.h, av.h, code1.h, code2.h, block, lr, beta1, beta2, eps, weightDecay, step, kernel); err != nil {
		fail("adamw8bit", err)
	}
}
