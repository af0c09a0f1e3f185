package payloads

import "math"

// This file duplicates, name for name, what the V2 REST work (branch
// h-v2rest, payloads/v2body.go) defines for its own decoding: when both
// are merged, this file goes and the V2 gRPC code uses that one.

// halfValue is the value of an IEEE 754 binary16 bit pattern.
func halfValue(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(mant, -24)
	case 0x1f:
		if mant != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * math.Ldexp(1+mant/1024, exp-15)
}
