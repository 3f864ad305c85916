package webrtcleg

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs adapts pion's logging to the engine's slog.Logger. pion's levels
// are shifted down one step: its Info messages (every state change of every
// connection) become Debug, its Warn messages — mostly conditions a PBX
// expects, such as a browser's mDNS candidate it cannot resolve or a packet
// of an unregistered payload type — become Info, and its Error messages
// Warn. Its Debug and Trace become Debug-4. Nothing is formatted for a
// disabled level.
type pionLogs struct{ log *slog.Logger }

// NewLogger implements logging.LoggerFactory.
func (p pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: p.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

const levelTrace = slog.LevelDebug - 4

func (l pionLogger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

func (l pionLogger) emitf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l pionLogger) Trace(msg string)                  { l.emit(levelTrace, msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.emitf(levelTrace, format, args...) }
func (l pionLogger) Debug(msg string)                  { l.emit(levelTrace, msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.emitf(levelTrace, format, args...) }
func (l pionLogger) Info(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.emitf(slog.LevelDebug, format, args...) }
func (l pionLogger) Warn(msg string)                   { l.emit(slog.LevelInfo, msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.emitf(slog.LevelInfo, format, args...) }
func (l pionLogger) Error(msg string)                  { l.emit(slog.LevelWarn, msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.emitf(slog.LevelWarn, format, args...) }
