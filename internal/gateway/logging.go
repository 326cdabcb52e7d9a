package gateway

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/logging"
)

// LogUnary returns an interceptor that logs every call at debug level with
// its method, the caller's key id, the status code and the duration. Put it
// after the authentication interceptor so that the key id is known.
func LogUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !log.Enabled(ctx, slog.LevelDebug) {
			return handler(ctx, req)
		}
		start := time.Now()
		resp, err := handler(ctx, req)
		logCall(ctx, log, info.FullMethod, start, err)
		return resp, err
	}
}

// LogStream is LogUnary for streams; the record is written when the stream
// ends.
func LogStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !log.Enabled(ss.Context(), slog.LevelDebug) {
			return handler(srv, ss)
		}
		start := time.Now()
		err := handler(srv, ss)
		logCall(ss.Context(), log, info.FullMethod, start, err)
		return err
	}
}

func logCall(ctx context.Context, log *slog.Logger, method string, start time.Time, err error) {
	keyID := ""
	if p, ok := auth.FromContext(ctx); ok {
		keyID = p.KeyID
	}
	log.LogAttrs(ctx, slog.LevelDebug, "rpc",
		slog.String(logging.KeyMethod, method),
		slog.String(logging.KeyKeyID, keyID),
		slog.String("code", status.Code(err).String()),
		slog.Duration("elapsed", time.Since(start)))
}
