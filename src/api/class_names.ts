const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

/** Class names of the data sets branchynet reads; else the class indices as strings. */
export function defaultClassNames(dataset: string | undefined, classes: number): string[] {
  if (dataset === 'cifar10' && classes === CIFAR10_CLASSES.length) return [...CIFAR10_CLASSES];
  return Array.from({ length: classes }, (_, c) => String(c));
}
