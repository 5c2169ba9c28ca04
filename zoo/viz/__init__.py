"""zoo.viz: pictures for people learning how CNNs work. Each module draws from plain
data with matplotlib's object-oriented API on the Agg canvas (no display needed)
and writes PNGs atomically. Training records data and never draws; drawing never
trains (zoo.train and zoo.viz do not import each other; the commands compose them):

    curves.write_curves(run_folder)             runs/NAME/curves.png from metrics.csv
    confusion.plot_confusion(cm, names, path)    confusion-matrix heat map
    features.capture_feature_maps / save_feature_maps   every conv/pool channel for one image
    mistakes.plot_mistakes(...)                  grid of misclassified images, "predicted / true"
    lr_sweep.plot_lr_sweep(runs, path, title)    loss curves of zoo.train.sweep's runs, one per learning rate

Nothing is imported here, so `import zoo.viz` stays free of matplotlib and torch.
"""
