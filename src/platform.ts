/** Whether this code runs in Node (not in a page or a worker): Node-only paths check it. */
export const inNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
