// Minimal typings for the parts of libmime this layer uses (the package ships none).
declare module 'libmime' {
  interface Libmime {
    decodeWords(str: string): string;
  }
  const libmime: Libmime;
  export default libmime;
}

declare module 'libmime/lib/charset.js' {
  interface LibmimeCharset {
    decode(buf: Buffer, fromCharset?: string): string;
    normalizeCharset(charset: string): string;
  }
  const charset: LibmimeCharset;
  export default charset;
}
