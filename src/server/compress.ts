/**
 * COMPRESS=DEFLATE (RFC 4978): raw DEFLATE (no zlib header) both ways. Output is flushed with
 * Z_SYNC_FLUSH once per burst of responses, so the client sees each response without waiting
 * for more data, while lines written in the same tick still share one flush.
 */
import { constants, createDeflateRaw, createInflateRaw, type DeflateRaw, type InflateRaw } from 'node:zlib';
import { Writable, type Duplex } from 'node:stream';

/** Callbacks for decompressed input and failures. */
export interface CompressionHandlers {
  onData(chunk: Buffer): void;
  onError(err: Error): void;
}

/** A compression layer on a connected socket: `output` takes plaintext, the socket carries DEFLATE. */
export class Compression {
  /** Write responses here; they reach the socket compressed. */
  readonly output: Writable;
  private readonly deflate: DeflateRaw;
  private readonly inflate: InflateRaw;
  private flushScheduled = false;
  private readonly onSocketData: (chunk: Buffer) => void;

  constructor(
    private readonly socket: Duplex,
    handlers: CompressionHandlers,
  ) {
    // memLevel 8 / windowBits 15 are the RFC's expectations for interoperable peers.
    this.deflate = createDeflateRaw({ windowBits: 15, memLevel: 8 });
    this.inflate = createInflateRaw({ windowBits: 15 });
    this.deflate.on('error', handlers.onError);
    this.inflate.on('error', handlers.onError);
    this.inflate.on('data', handlers.onData);
    this.deflate.pipe(socket);
    this.onSocketData = (chunk) => {
      this.inflate.write(chunk);
    };
    socket.on('data', this.onSocketData);

    const deflate = this.deflate;
    this.output = new Writable({
      highWaterMark: 64 * 1024,
      write: (chunk: Buffer, _enc, cb) => {
        const more = deflate.write(chunk);
        this.scheduleFlush();
        if (more) cb();
        else deflate.once('drain', () => cb());
      },
      final: (cb) => {
        deflate.end(() => cb());
      },
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (!this.deflate.destroyed) this.deflate.flush(constants.Z_SYNC_FLUSH);
    });
  }

  /** Finish the compressed stream and end the socket after it. */
  end(): void {
    this.output.end();
  }

  /** Release zlib state (the socket is gone). */
  destroy(): void {
    this.socket.removeListener('data', this.onSocketData);
    this.deflate.unpipe(this.socket);
    this.deflate.destroy();
    this.inflate.destroy();
    this.output.destroy();
  }
}
