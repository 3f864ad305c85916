package tone

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Errors of the WAV functions; test with errors.Is.
var (
	// ErrNotWAV means the input does not start with a RIFF/WAVE header.
	ErrNotWAV = errors.New("tone: not a RIFF/WAVE file")
	// ErrUnsupportedWAV means a well-formed WAV that is not 16-bit PCM, or
	// parameters WriteWAV cannot express.
	ErrUnsupportedWAV = errors.New("tone: WAV is not 16-bit PCM")
	// ErrMalformedWAV means a truncated or inconsistent WAV file.
	ErrMalformedWAV = errors.New("tone: malformed WAV file")
)

const (
	wavFormatPCM        = 1
	wavFormatExtensible = 0xFFFE
	wavHeaderSize       = 44
	maxFmtChunk         = 1 << 10 // PCM needs 16 bytes, extensible 40
)

// WriteWAV writes samples (interleaved when channels > 1) as a 16-bit PCM
// RIFF/WAVE file: a 44-byte header and the data chunk.
func WriteWAV(w io.Writer, sampleRate, channels int, samples []int16) error {
	switch {
	case sampleRate <= 0 || sampleRate > math.MaxUint32/(2*max(channels, 1)):
		return fmt.Errorf("%w: sample rate %d", ErrUnsupportedWAV, sampleRate)
	case channels <= 0 || channels > math.MaxUint16/2:
		return fmt.Errorf("%w: %d channels", ErrUnsupportedWAV, channels)
	case len(samples)%channels != 0:
		return fmt.Errorf("%w: %d samples do not fill frames of %d channels", ErrUnsupportedWAV, len(samples), channels)
	case uint64(len(samples))*2 > math.MaxUint32-(wavHeaderSize-8):
		return fmt.Errorf("%w: %d samples exceed the 4 GiB RIFF limit", ErrUnsupportedWAV, len(samples))
	}
	dataSize := uint32(2 * len(samples))
	h := make([]byte, 0, wavHeaderSize)
	h = append(h, "RIFF"...)
	h = binary.LittleEndian.AppendUint32(h, wavHeaderSize-8+dataSize)
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, 16)
	h = binary.LittleEndian.AppendUint16(h, wavFormatPCM)
	h = binary.LittleEndian.AppendUint16(h, uint16(channels))
	h = binary.LittleEndian.AppendUint32(h, uint32(sampleRate))
	h = binary.LittleEndian.AppendUint32(h, uint32(sampleRate*channels*2))
	h = binary.LittleEndian.AppendUint16(h, uint16(channels*2))
	h = binary.LittleEndian.AppendUint16(h, 16)
	h = append(h, "data"...)
	h = binary.LittleEndian.AppendUint32(h, dataSize)

	bw := bufio.NewWriter(w)
	if _, err := bw.Write(h); err != nil {
		return fmt.Errorf("tone: write WAV header: %w", err)
	}
	var b [2]byte
	for _, s := range samples {
		binary.LittleEndian.PutUint16(b[:], uint16(s))
		if _, err := bw.Write(b[:]); err != nil {
			return fmt.Errorf("tone: write WAV data: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("tone: write WAV data: %w", err)
	}
	return nil
}

// ReadWAV reads a 16-bit PCM RIFF/WAVE file (plain PCM or
// WAVE_FORMAT_EXTENSIBLE with a PCM sub-format) and returns its sample
// rate, channel count and samples, interleaved when there are several
// channels. Chunks other than "fmt " and "data" (LIST, fact, cue …) are
// skipped; reading stops at the end of the data chunk. Other formats
// return an error wrapping ErrUnsupportedWAV; input that is not WAV, or is
// truncated or inconsistent, one wrapping ErrNotWAV or ErrMalformedWAV.
// Memory use is bounded by the input's actual length, not by the sizes it
// declares.
func ReadWAV(r io.Reader) (sampleRate, channels int, samples []int16, err error) {
	var riff [12]byte
	if _, err := io.ReadFull(r, riff[:]); err != nil {
		return 0, 0, nil, fmt.Errorf("%w: %w", ErrNotWAV, err)
	}
	if string(riff[0:4]) != "RIFF" || string(riff[8:12]) != "WAVE" {
		return 0, 0, nil, fmt.Errorf("%w: header %q", ErrNotWAV, riff[:])
	}
	var blockAlign int
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return 0, 0, nil, fmt.Errorf("%w: no data chunk: %w", ErrMalformedWAV, err)
		}
		id := string(ch[0:4])
		size := binary.LittleEndian.Uint32(ch[4:8])
		switch id {
		case "fmt ":
			if blockAlign != 0 {
				return 0, 0, nil, fmt.Errorf("%w: second fmt chunk", ErrMalformedWAV)
			}
			if size < 16 || size > maxFmtChunk {
				return 0, 0, nil, fmt.Errorf("%w: fmt chunk of %d bytes", ErrMalformedWAV, size)
			}
			buf := make([]byte, size+size&1)
			if _, err := io.ReadFull(r, buf); err != nil {
				return 0, 0, nil, fmt.Errorf("%w: fmt chunk: %w", ErrMalformedWAV, err)
			}
			sampleRate, channels, blockAlign, err = parseFmt(buf[:size])
			if err != nil {
				return 0, 0, nil, err
			}
		case "data":
			if blockAlign == 0 {
				return 0, 0, nil, fmt.Errorf("%w: data chunk before fmt chunk", ErrMalformedWAV)
			}
			if size%uint32(blockAlign) != 0 {
				return 0, 0, nil, fmt.Errorf("%w: data chunk of %d bytes is not whole frames of %d", ErrMalformedWAV, size, blockAlign)
			}
			data, err := io.ReadAll(io.LimitReader(r, int64(size)))
			if err != nil {
				return 0, 0, nil, fmt.Errorf("%w: data chunk: %w", ErrMalformedWAV, err)
			}
			if len(data) != int(size) {
				return 0, 0, nil, fmt.Errorf("%w: data chunk truncated at %d of %d bytes", ErrMalformedWAV, len(data), size)
			}
			samples = make([]int16, len(data)/2)
			for i := range samples {
				samples[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
			}
			return sampleRate, channels, samples, nil
		default:
			skip := int64(size) + int64(size&1)
			if n, err := io.CopyN(io.Discard, r, skip); err != nil {
				return 0, 0, nil, fmt.Errorf("%w: %q chunk truncated at %d of %d bytes: %w", ErrMalformedWAV, id, n, skip, err)
			}
		}
	}
}

// parseFmt checks a fmt chunk and returns its sample rate, channel count
// and block alignment.
func parseFmt(b []byte) (sampleRate, channels, blockAlign int, err error) {
	format := binary.LittleEndian.Uint16(b[0:2])
	channels = int(binary.LittleEndian.Uint16(b[2:4]))
	sampleRate = int(binary.LittleEndian.Uint32(b[4:8]))
	blockAlign = int(binary.LittleEndian.Uint16(b[12:14]))
	bits := binary.LittleEndian.Uint16(b[14:16])
	if format == wavFormatExtensible {
		// cbSize(2) validBits(2) channelMask(4) subFormat GUID(16), whose
		// first two bytes are the format code.
		if len(b) < 40 {
			return 0, 0, 0, fmt.Errorf("%w: extensible fmt chunk of %d bytes", ErrMalformedWAV, len(b))
		}
		format = binary.LittleEndian.Uint16(b[24:26])
	}
	switch {
	case format != wavFormatPCM:
		return 0, 0, 0, fmt.Errorf("%w: format code %#x", ErrUnsupportedWAV, format)
	case bits != 16:
		return 0, 0, 0, fmt.Errorf("%w: %d bits per sample", ErrUnsupportedWAV, bits)
	case channels == 0 || sampleRate == 0:
		return 0, 0, 0, fmt.Errorf("%w: %d channels at %d Hz", ErrMalformedWAV, channels, sampleRate)
	case blockAlign != 2*channels:
		return 0, 0, 0, fmt.Errorf("%w: block alignment %d for %d channels", ErrMalformedWAV, blockAlign, channels)
	}
	return sampleRate, channels, blockAlign, nil
}
