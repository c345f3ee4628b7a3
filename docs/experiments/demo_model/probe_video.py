"""Session 8: what a built demo model's VideoMamba knows. A linear probe of the 12 scene facts on the mean of its
patch tokens (and on the last key frame's tokens alone), fitted on the first 1,500 training clips of a
`training/demo_model.py` work folder, scored on its held-out clips.

    python probe_video.py WORK      # WORK: the --work folder of `python -m mobilevideogpt.training.demo_model`
"""
import json, sys, torch, torch.nn.functional as F
from pathlib import Path
from transformers import AutoModel, AutoProcessor
from mobilevideogpt.training.demo_model import key_frames, FACT_CLASSES
torch.set_num_threads(2); torch.manual_seed(0)
W=Path(sys.argv[1]); base=W/'base'  # the pre-trained base
model=AutoModel.from_pretrained(base,trust_remote_code=True).eval(); proc=AutoProcessor.from_pretrained(base,trust_remote_code=True)
recs=json.loads((W/'train'/'data.json').read_text()); seen=set(); sub=[]
for r in recs:
    if r['video'] not in seen: seen.add(r['video']); sub.append(r)
    if len(sub)>=1500: break
(W/'train'/'sub.json').write_text(json.dumps(sub))
Xtr,Ytr=key_frames(model,proc,W/'train'/'sub.json'); Xte,Yte=key_frames(model,proc,W/'held_out'/'data.json')
enc=model.model.video_encoder
def feats(X):
    with torch.no_grad(): return torch.cat([enc(X[i:i+256].float())[:,1:] for i in range(0,len(X),256)])
Ftr,Fte=feats(Xtr),feats(Xte)
for name,(a,b) in {'mean':(Ftr.mean(1),Fte.mean(1)),'frame-mean':(Ftr.unflatten(1,(4,-1)).mean(2),Fte.unflatten(1,(4,-1)).mean(2))}.items():
    if name=='frame-mean': a,b=a[:,-1],b[:,-1]
    head=torch.nn.Linear(a.shape[-1],sum(FACT_CLASSES)); opt=torch.optim.Adam(head.parameters(),1e-2)
    for s in range(400):
        outs=head(a).split(FACT_CLASSES,-1); loss=sum(F.cross_entropy(o,Ytr[:,h]) for h,o in enumerate(outs)); opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad(): outs=head(b).split(FACT_CLASSES,-1)
    print(name, [round((o.argmax(-1)==Yte[:,h]).float().mean().item()*100,1) for h,o in enumerate(outs)], flush=True)
