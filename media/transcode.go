package media

import "pbxd/media/g711"

// Transcode converts a G.711 payload from one codec to the other in place
// and reports whether it could (false for any other pair).
func Transcode(p []byte, from, to Codec) bool {
	switch {
	case from.Name == to.Name:
		return true
	case from.Name == PCMU.Name && to.Name == PCMA.Name:
		g711.TranscodeUlawToAlaw(p)
		return true
	case from.Name == PCMA.Name && to.Name == PCMU.Name:
		g711.TranscodeAlawToUlaw(p)
		return true
	}
	return false
}
