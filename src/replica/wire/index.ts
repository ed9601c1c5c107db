export * from './protocol';
export * from './errors';
export { encodeHeader, encodeFrame, decodeHeader, payloadCrcMatches, type FrameFields } from './frame-codec';
export { FrameDecoder } from './frame-decoder';
