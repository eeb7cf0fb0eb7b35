"""Training the bundled sentiment model's shipped weights (`python -m listener.models.train --help`).

- `examples`: the labelled texts a run reads (seeded samples, repeats, the calibration sample);
- `evaluation`: logits, embeddings, the temperature, validation figures, checkpoint selection;
- `checkpoints`: checkpoints, their average, int8 weights, a run's resume state;
- `finetune`: the fine-tuning loop;
- `export`: the artifact (listener/models/bundled/) from a checkpoint;
- `head`: the first model, a logistic-regression head on the frozen base;
- `cli`: the command line; `log`: progress lines on stderr.

Nothing here runs in the product: listener reads the artifact through `listener.models.bundled`.
"""

from listener.models.train.checkpoints import quantize_state, read_checkpoint, shipped_state
from listener.models.train.cli import language_repeat_arg, layer_list_arg, main
from listener.models.train.evaluation import embed, evaluate_logits, fit_temperature, selection_score, teacher_logits
from listener.models.train.export import MODEL_NAME, SMOOTH_ALPHA, export
from listener.models.train.finetune import finetune
from listener.models.train.head import fit_head, train_head

__all__ = ["finetune", "export", "train_head", "fit_head", "main", "embed", "evaluate_logits", "fit_temperature",
           "teacher_logits", "selection_score", "read_checkpoint", "shipped_state", "quantize_state",
           "layer_list_arg", "language_repeat_arg", "MODEL_NAME", "SMOOTH_ALPHA"]
