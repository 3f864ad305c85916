package g711

import "math/bits"

// µ-law in its 16-bit-input formulation. G.711 defines µ-law on 14-bit
// samples with a bias of 33 and a clip at 8159; scaled by four that is a
// bias of 0x84 (132) and a clip at 32635, so that magnitude+bias never
// exceeds 32767. The biased magnitude's highest set bit (7..14) gives the
// segment (0..7), the four bits below it the step within the segment, and
// the code is the ones' complement of sign|segment|step.
const (
	ulawBias = 0x84
	ulawClip = 32635
)

// linearToUlaw is the reference µ-law encoder; the encode table is built
// from it.
func linearToUlaw(s int16) byte {
	x := int32(s)
	var sign byte
	if x < 0 {
		x = -x
		sign = 0x80
	}
	x = min(x, ulawClip) + ulawBias       // 132..32767
	seg := bits.Len32(uint32(x)) - 8      // 0..7
	step := byte(x>>(uint(seg)+3)) & 0x0F // 0..15
	return ^(sign | byte(seg)<<4 | step)
}

// ulawToLinear is the reference µ-law decoder: the midpoint of the code's
// quantisation interval, without the bias. Codes 0xFF and 0x7F (positive
// and negative zero) both decode to 0.
func ulawToLinear(b byte) int16 {
	u := ^b
	seg := (u >> 4) & 0x07
	t := (int32(u&0x0F)<<3 + ulawBias) << seg
	if u&0x80 != 0 {
		return int16(ulawBias - t)
	}
	return int16(t - ulawBias)
}
