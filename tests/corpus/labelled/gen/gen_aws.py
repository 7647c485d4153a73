import sys,re
from common import *
CRED_OPS={'get-secret-value','batch-get-secret-value','get-session-token','assume-role','assume-role-with-saml','assume-role-with-web-identity','assume-root','create-access-key','get-login-password','get-authorization-token','create-login-profile','update-login-profile','get-password-data','get-federation-token','get-credentials','generate-data-key','generate-data-key-pair','generate-data-key-without-plaintext','generate-data-key-pair-without-plaintext','decrypt','put-secret-value','create-secret','update-secret','get-cluster-credentials','get-cluster-credentials-with-iam','generate-db-auth-token','create-service-specific-credential','reset-service-specific-credential','get-instance-access-details','get-random-password','get-role-credentials','create-key-pair','import-key-pair','get-parameter','get-parameters','get-parameters-by-path','put-parameter','get-id','get-open-id-token','get-open-id-token-for-developer-identity','get-credentials-for-identity','admin-initiate-auth','initiate-auth','admin-set-user-password','change-password','create-presigned-domain-url','create-presigned-notebook-instance-url','get-data-endpoint','get-temporary-credentials','get-kubeconfig','create-api-key','get-api-key','create-token','get-token','rotate-secret','restore-secret','get-ssh-public-key-of-nothing','create-cluster-credentials','get-access-key-last-used-none','get-account-password-policy-none','export-certificate','get-certificate','create-user-access-logging','update-access-key-none','put-credentials','get-ecr-login','get-key-pair','create-auth-token','get-auth-token','get-db-auth-token','reset-password','admin-reset-user-password','create-authentication-token','get-secret','create-access-token','get-streaming-session-url','create-streaming-url','get-signed-url'}
CODE_OPS={'invoke','invoke-async','invoke-with-response-stream','send-command','start-session','execute-command','send-ssh-public-key','send-serial-console-ssh-public-key','test-invoke-method','test-invoke-authorizer','start-query-execution','execute-statement','batch-execute-statement','execute-sql','start-job-run','start-execution','start-sync-execution','add-steps','submit-job','start-build','start-build-batch','invoke-endpoint','invoke-endpoint-async','run-task','start-task','start-automation-execution','execute-transaction','start-pipeline-execution','test-function','run-job-flow','execute-query','invoke-agent','invoke-model','start-notebook-execution','run-command','start-workflow-run','start-query'}
DESTROY_PREFIX=('delete-','batch-delete-','terminate-','purge-','remove-','deregister-','release-','abort-','schedule-key-deletion','empty-','batch-detach-','discard-','erase-','wipe','delete','clear-','disable-key-rotation-none')
SAFE_READ=('describe-','get-','list-','search-','lookup-','head-','batch-get-','estimate-','validate-','check-','detect-','preview-','simulate-','verify-','query','scan','select-','filter-','count-','view-','download-db-log-file-portion','decode-authorization-message','wait','help','explain-')
def cls(line):
    w=words(line)
    i=1
    while i<len(w) and w[i].startswith('--'):
        i+= 2 if '=' not in w[i] and w[i] not in ('--debug','--no-paginate','--no-verify-ssl','--no-sign-request') else 1
    if len(w)<=i+1: return None
    svc,op=w[i],w[i+1]
    rest=w[i+2:]
    if '--dry-run' in rest: return 'read'
    if svc=='s3':
        if op in ('ls',): return 'read'
        if op=='presign': return 'credential'
        if op in ('rm','rb','mv'): return 'destroy'
        if op=='sync': return 'destroy' if '--delete' in rest else ('local' if not rest or not rest[-1].startswith('s3://') else 'write')
        if op=='cp': return 'write' if rest and [a for a in rest if not a.startswith('-')][-1:] and [a for a in rest if not a.startswith('-')][-1].startswith('s3://') else 'local'
        if op in ('mb','website'): return 'write'
        return None
    if svc=='ssm' and op in ('get-parameter','get-parameters','get-parameters-by-path'):
        return 'credential' if '--with-decryption' in rest else 'read'
    if svc=='ssm' and op=='put-parameter':
        return 'credential' if 'SecureString' in line else 'write'
    if svc=='ec2' and op in ('create-key-pair',): return 'credential'
    if svc=='ec2' and op=='import-key-pair': return 'write'
    if svc=='dynamodb' and op in ('execute-statement','batch-execute-statement','execute-transaction'):
        s=line.upper()
        if re.search(r'\bDELETE\b|\bUPDATE\b',s): return 'destroy'
        if re.search(r'\bINSERT\b',s): return 'write'
        return 'read'
    if svc in ('athena','redshift-data','rds-data','timestream-query') or op in CODE_OPS:
        if svc=='timestream-query' and op=='query': return 'read'
        if op in ('get-query-results','get-query-execution','list-query-executions','describe-statement','get-statement-result','list-statements'): return 'read'
        if op in CODE_OPS: return 'code'
    if svc=='lambda' and op in ('invoke',): return 'code'
    if op.endswith('without-plaintext'): return 'read'
    if op=='restore-secret': return 'write'
    if op in ('run-task','start-task','start-pipeline-execution'): return 'write'
    if op in CRED_OPS: return 'credential'
    if svc=='iam' and op=='update-access-key': return 'write'
    if svc=='dynamodb' and op in ('query','scan'): return 'read'
    if svc=='dynamodb' and op in ('put-item','batch-write-item','update-item'):
        return 'destroy' if op=='update-item' else 'write'
    if svc=='s3api' and op=='put-object': return 'write'
    if op in ('delete-tags','delete-tag','delete-resource-tags','delete-tags-for-resource'): return 'write'
    if op.startswith(DESTROY_PREFIX): 
        if op.startswith(('remove-tags','remove-tag','remove-permission','remove-role','remove-user','remove-client','remove-source','remove-targets','remove-layer','remove-attributes','remove-flow','remove-listener','remove-region','remove-thing','remove-profile','remove-notification','remove-auto','remove-','deregister-','release-','clear-')) and not op.startswith(('remove-account','remove-backup')):
            # removals of links/tags/permissions and deregistrations are reversible configuration
            return 'destroy' if op in ('release-address','release-hosts','deregister-image','release-ipam-pool-allocation','deregister-db-proxy-targets-none') else 'write'
        return 'destroy'
    if op.startswith(('delete','untag')) : return 'destroy' if op.startswith('delete') else 'write'
    if op.startswith(('reset-',)) and op in ('reset-db-cluster-parameter-group-none',): return 'destroy'
    if op.startswith(SAFE_READ) or op in ('query','scan','ls'): 
                return 'read'
    if op.startswith(('restore-','copy-','import-','export-','create-','update-','put-','modify-','start-','stop-','tag-','untag-','associate-','disassociate-','register-','set-','add-','enable-','disable-','cancel-','attach-','detach-','accept-','reject-','authorize-','revoke-','allocate-','request-','upload-','confirm-','reboot-','run-','replace-','change-','deprecate-','rotate-','grant-','deactivate-','activate-','complete-','initiate-','merge-','purchase-','send-','publish-','apply-','reset-','retry-','resume-','suspend-','subscribe','unsubscribe','move-','promote-','failover-','reboot','renew-','rebuild-','restart-','deploy','package','push','synthesize','translate','tag','override-','increase-','decrease-','adjust','schedule-','batch-','transfer-','unassign-','assign-','unlink-','link-','commit-','create','put','update','login','install','uninstall','provision-','sign','encrypt','re-encrypt','import','reencrypt')):
        if op in ('reboot-instances','reboot-db-instance'): return 'write'
        if op=='login': return 'credential'
        if op in ('encrypt','sign','re-encrypt'): return 'read' if op!='re-encrypt' else 'write'
        return 'write'
    return None
rows=[]
for l in open('src/aws.txt'):
    rel,cmd=l.rstrip('\n').split('\t',1)
    c=clean(cmd)
    if not c: continue
    k=cls(c)
    if not k: continue
    rows.append((k,c,'awscli 1.45.11 examples: '+rel))
by={}
for r in rows: by.setdefault(r[0],[]).append(r)
quota={'read':300,'write':230,'local':40,'destroy':230,'credential':80,'code':80}
out=[]
for k,v in by.items():
    # at most 2 per example file
    seen={};vv=[]
    for r in v:
        seen[r[2]]=seen.get(r[2],0)+1
        if seen[r[2]]<=(3 if k in ('credential','code','local') else 1): vv.append(r)
    out+=sample(vv,quota[k])
    print(k,len(v),len(vv),file=sys.stderr)
out.sort(key=lambda r:r[2])
import os
with open('out/aws.tsv','w') as f:
    for r in out: f.write('\t'.join(r)+'\n')
