package safetensors

import "fmt"

// DType is a safetensors element type. The zero value is [Invalid].
//
// The constants are declared in the same order as the Rust safetensors
// library's Dtype enum, which the writer uses to order tensors (descending
// dtype, then name), so that files written here are laid out byte for byte as
// the reference implementation lays them out.
type DType uint8

// Element types known to this package. The names (see [DType.String]) are the
// strings used in safetensors headers.
const (
	Invalid DType = iota // not a valid dtype; the zero value
	BOOL                 // boolean, one byte (0 or 1)
	U8                   // unsigned 8-bit integer
	I8                   // signed 8-bit integer
	F8E5M2               // 8-bit float, 5 exponent bits and 2 mantissa bits ("F8_E5M2")
	F8E4M3               // 8-bit float, 4 exponent bits and 3 mantissa bits ("F8_E4M3")
	I16                  // signed 16-bit integer
	U16                  // unsigned 16-bit integer
	F16                  // IEEE 754 half precision
	BF16                 // bfloat16: the upper 16 bits of a float32
	I32                  // signed 32-bit integer
	U32                  // unsigned 32-bit integer
	F32                  // IEEE 754 single precision
	F64                  // IEEE 754 double precision
	I64                  // signed 64-bit integer
	U64                  // unsigned 64-bit integer
	numDTypes
)

var dtypeNames = [numDTypes]string{
	Invalid: "INVALID",
	BOOL:    "BOOL",
	U8:      "U8",
	I8:      "I8",
	F8E5M2:  "F8_E5M2",
	F8E4M3:  "F8_E4M3",
	I16:     "I16",
	U16:     "U16",
	F16:     "F16",
	BF16:    "BF16",
	I32:     "I32",
	U32:     "U32",
	F32:     "F32",
	F64:     "F64",
	I64:     "I64",
	U64:     "U64",
}

var dtypeSizes = [numDTypes]int{
	BOOL: 1, U8: 1, I8: 1, F8E5M2: 1, F8E4M3: 1,
	I16: 2, U16: 2, F16: 2, BF16: 2,
	I32: 4, U32: 4, F32: 4,
	F64: 8, I64: 8, U64: 8,
}

// String returns the header name of d ("F32", "BF16", "F8_E4M3", ...), or
// "DType(n)" for a value outside the known set.
func (d DType) String() string {
	if d < numDTypes {
		return dtypeNames[d]
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// Size returns the size of one element in bytes, or 0 if d is not valid.
func (d DType) Size() int {
	if d < numDTypes {
		return dtypeSizes[d]
	}
	return 0
}

// Valid reports whether d is one of the known element types.
func (d DType) Valid() bool { return d > Invalid && d < numDTypes }

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool {
	switch d {
	case F8E5M2, F8E4M3, F16, BF16, F32, F64:
		return true
	}
	return false
}

// ParseDType returns the DType whose header name is s (case-sensitive, as in
// safetensors headers: "F32", "BF16", "I64", "BOOL", ...).
func ParseDType(s string) (DType, error) {
	for d := BOOL; d < numDTypes; d++ {
		if dtypeNames[d] == s {
			return d, nil
		}
	}
	return Invalid, fmt.Errorf("safetensors: unknown dtype %q", s)
}

// DTypes returns all valid dtypes, in declaration order.
func DTypes() []DType {
	out := make([]DType, 0, numDTypes-1)
	for d := BOOL; d < numDTypes; d++ {
		out = append(out, d)
	}
	return out
}
