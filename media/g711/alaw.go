package g711

import "math/bits"

// A-law works on 13-bit samples: the 16-bit input shifted right by three.
// Negative values are folded onto 0..4095 by ones' complement (-x-1), so
// A-law has no negative zero. Magnitudes below 32 form segment 0 with steps
// of two (the linear segment); above, the highest set bit (5..11) gives the
// segment 1..7 and the four bits below it the step. The sign bit is 1 for
// positive values, and the even bits of the code are inverted (XOR 0x55)
// for transmission.
const alawInvert = 0x55

// linearToAlaw is the reference A-law encoder; the encode table is built
// from it.
func linearToAlaw(s int16) byte {
	x := int32(s) >> 3 // -4096..4095
	sign := byte(0x80)
	if x < 0 {
		x = ^x // 0..4095
		sign = 0
	}
	var code byte
	if x < 32 {
		code = byte(x >> 1)
	} else {
		seg := bits.Len32(uint32(x)) - 5 // 1..7
		code = byte(seg)<<4 | byte(x>>uint(seg))&0x0F
	}
	return (sign | code) ^ alawInvert
}

// alawToLinear is the reference A-law decoder: the midpoint of the code's
// quantisation interval in 16-bit terms.
func alawToLinear(b byte) int16 {
	a := b ^ alawInvert
	seg := (a >> 4) & 0x07
	t := int32(a&0x0F)<<4 + 8
	if seg > 0 {
		t = (t + 0x100) << (seg - 1)
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}
