import { BlockDeviceError, type BlockDevice } from '../block-device';

/** Rejects ranges a correct caller never sends: misaligned or past the end. */
export function checkRange(device: BlockDevice, offset: number, length: number): void {
  const bs = device.blockSize;
  if (offset < 0 || length < 0 || offset % bs !== 0 || length % bs !== 0) {
    throw new BlockDeviceError('io', `misaligned range offset=${offset} length=${length} (block size ${bs})`);
  }
  if (offset + length > device.size()) {
    throw new BlockDeviceError('io', `range offset=${offset} length=${length} is past the end (${device.size()})`);
  }
}

/** The listener list behind BlockDevice.onResize. */
export class ResizeNotifier {
  private readonly listeners = new Set<(newSize: number) => void>();

  add(listener: (newSize: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(newSize: number): void {
    for (const listener of this.listeners) listener(newSize);
  }
}
